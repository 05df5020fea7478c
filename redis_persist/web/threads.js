/* redis_persist dashboard: LangGraph threads. #/threads lists threads; #/threads/{id} shows a thread's
 * runs (each one a task: click to open it) and, for a `messages` state, its conversation. */
(() => {
  'use strict';

  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
    return node;
  }

  async function getJson(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' } };
    // The key the task views keep for this browser session (app.js), when auth is on.
    const key = sessionStorage.getItem('redis_persist.api_key');
    if (key) init.headers['X-Api-Key'] = key;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.detail) || `Error ${response.status}`);
    return data;
  }

  function badge(status) {
    return el('span', { class: `badge status-${status}`, 'data-testid': 'thread-status' }, status);
  }

  function messageText(message) {
    if (typeof message.content === 'string') return message.content;
    if (Array.isArray(message.content)) {
      return message.content.map((part) => (typeof part === 'string' ? part : part.text || '')).join('');
    }
    return JSON.stringify(message.content);
  }

  const view = {
    root: $('threads-view'),
    timer: null,
    threadId: null,
    tenant: null,  // an admin looking at another tenant's thread: ids resolve there (?tenant=)

    open(threadId, tenant) {
      this.threadId = threadId;
      this.tenant = tenant;
      clearInterval(this.timer);
      this.refresh();
      this.timer = setInterval(() => this.refresh(), POLL_MS);
    },

    close() {
      clearInterval(this.timer);
      this.timer = null;
    },

    async refresh() {
      const error = $('threads-error');
      try {
        if (this.threadId) await this.renderThread(this.threadId);
        else await this.renderList();
        error.hidden = true;
      } catch (problem) {
        error.textContent = `Cannot load threads: ${problem.message}`;
        error.hidden = false;
      }
    },

    async renderList() {
      const threads = await getJson('POST', '/threads/search', { limit: 50 });
      $('thread-detail').hidden = true;
      $('thread-list').hidden = false;
      const rows = threads.map((thread) => {
        const messages = thread.values && Array.isArray(thread.values.messages) ? thread.values.messages.length : '';
        const row = el('tr', { 'data-testid': 'thread-row', tabindex: 0 },
          // Admins see every tenant's threads, each naming its tenant (the same id may be in several).
          el('td', {}, thread.tenant ? el('span', { class: 'tenant-tag' }, `${thread.tenant} /`) : '',
            el('a', { href: `#/threads/${encodeURIComponent(thread.thread_id)}${inTenant(thread.tenant)}` },
              el('code', {}, thread.thread_id))),
          el('td', {}, (thread.metadata && thread.metadata.graph_id) || ''),
          el('td', {}, badge(thread.status)),
          el('td', {}, messages),
          el('td', { class: 'muted' }, thread.updated_at || ''));
        return row;
      });
      $('thread-rows').replaceChildren(...rows);
      $('threads-empty').hidden = threads.length > 0;
    },

    async renderThread(threadId) {
      const [thread, runs] = await Promise.all([
        getJson('GET', `/threads/${encodeURIComponent(threadId)}${inTenant(this.tenant)}`),
        getJson('GET', `/threads/${encodeURIComponent(threadId)}/runs?limit=100${inTenant(this.tenant, '&')}`),
      ]);
      $('thread-list').hidden = true;
      $('thread-detail').hidden = false;
      $('thread-title').textContent = thread.thread_id;
      $('thread-badge').replaceChildren(badge(thread.status));
      $('run-rows').replaceChildren(...runs.map((run) => el('tr', { 'data-testid': 'run-row' },
        el('td', {}, el('a', { href: `#/tasks/${encodeURIComponent(run.run_id)}${inTenant(this.tenant)}`,
          title: 'Open the run as a task' },
          el('code', {}, run.run_id))),
        el('td', {}, badge(run.status)),
        el('td', {}, run.multitask_strategy || ''),
        el('td', { class: 'muted' }, run.created_at || ''))));
      const messages = thread.values && Array.isArray(thread.values.messages) ? thread.values.messages : null;
      $('thread-messages-card').hidden = !messages;
      if (messages) {
        $('thread-messages').replaceChildren(...messages.map((message) => el('li',
          { class: `message message-${message.type}`, 'data-testid': 'thread-message', 'data-type': message.type },
          el('span', { class: 'message-role' }, message.type),
          el('span', { class: 'message-text' }, messageText(message)))));
      }
      $('thread-values').textContent = JSON.stringify(thread.values, null, 2);
    },
  };

  function inTenant(tenant, separator = '?') {
    return tenant ? `${separator}tenant=${encodeURIComponent(tenant)}` : '';
  }

  function route() {
    const match = location.hash.match(/^#\/threads(?:\/([^/?]+))?\/?(?:\?tenant=([A-Za-z0-9_-]+))?$/);
    if (!match) {
      view.close();
      view.root.hidden = true;
      return;
    }
    view.root.hidden = false;
    view.open(match[1] ? decodeURIComponent(match[1]) : null, match[2] || null);
  }

  window.addEventListener('hashchange', route);
  route();
})();
