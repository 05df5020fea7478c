/* The threads view (LangGraph Server API): #/threads lists threads; #/threads/{id} shows a thread's runs
 * (each one a task: click to open it) and, for a `messages` state, its conversation. */

import { $, h } from '../dom.js';

const POLL_MS = 2000;

function badge(status) {
  return h('span', { class: `badge status-${status}`, 'data-testid': 'thread-status' }, status);
}

function messageText(message) {
  if (typeof message.content === 'string') return message.content;
  if (Array.isArray(message.content)) {
    return message.content.map((part) => (typeof part === 'string' ? part : part.text || '')).join('');
  }
  return JSON.stringify(message.content);
}

function inTenant(tenant, separator = '?') {
  return tenant ? `${separator}tenant=${encodeURIComponent(tenant)}` : '';
}

export class ThreadsView {
  constructor(api) {
    this.api = api;
    this.timer = null;
    this.threadId = null;
    this.tenant = null;  // an admin looking at another tenant's thread: ids resolve there (?tenant=)
  }

  open(threadId, tenant) {
    this.threadId = threadId;
    this.tenant = tenant;
    clearInterval(this.timer);
    this.refresh();
    this.timer = setInterval(() => this.refresh(), POLL_MS);
  }

  close() {
    clearInterval(this.timer);
    this.timer = null;
  }

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
  }

  async renderList() {
    const threads = await this.api.request('POST', '/threads/search', { limit: 50 });
    $('thread-detail').hidden = true;
    $('thread-list').hidden = false;
    const rows = threads.map((thread) => {
      const messages = thread.values && Array.isArray(thread.values.messages) ? thread.values.messages.length : '';
      return h('tr', { 'data-testid': 'thread-row', tabindex: 0 },
        // Admins see every tenant's threads, each naming its tenant (the same id may be in several).
        h('td', {}, thread.tenant ? h('span', { class: 'tenant-tag' }, `${thread.tenant} /`) : '',
          h('a', { href: `#/threads/${encodeURIComponent(thread.thread_id)}${inTenant(thread.tenant)}` },
            h('code', {}, thread.thread_id))),
        h('td', {}, (thread.metadata && thread.metadata.graph_id) || ''),
        h('td', {}, badge(thread.status)),
        h('td', {}, messages),
        h('td', { class: 'muted' }, thread.updated_at || ''));
    });
    $('thread-rows').replaceChildren(...rows);
    $('threads-empty').hidden = threads.length > 0;
  }

  async renderThread(threadId) {
    const [thread, runs] = await Promise.all([
      this.api.request('GET', `/threads/${encodeURIComponent(threadId)}${inTenant(this.tenant)}`),
      this.api.request('GET', `/threads/${encodeURIComponent(threadId)}/runs?limit=100${inTenant(this.tenant, '&')}`),
    ]);
    $('thread-list').hidden = true;
    $('thread-detail').hidden = false;
    $('thread-title').textContent = thread.thread_id;
    $('thread-badge').replaceChildren(badge(thread.status));
    $('run-rows').replaceChildren(...runs.map((run) => h('tr', { 'data-testid': 'run-row' },
      h('td', {}, h('a', { href: `#/tasks/${encodeURIComponent(run.run_id)}${inTenant(this.tenant)}`,
        title: 'Open the run as a task' },
      h('code', {}, run.run_id))),
      h('td', {}, badge(run.status)),
      h('td', {}, run.multitask_strategy || ''),
      h('td', { class: 'muted' }, run.created_at || ''))));
    const messages = thread.values && Array.isArray(thread.values.messages) ? thread.values.messages : null;
    $('thread-messages-card').hidden = !messages;
    if (messages) {
      $('thread-messages').replaceChildren(...messages.map((message) => h('li',
        { class: `message message-${message.type}`, 'data-testid': 'thread-message', 'data-type': message.type },
        h('span', { class: 'message-role' }, message.type),
        h('span', { class: 'message-text' }, messageText(message)))));
    }
    $('thread-values').textContent = JSON.stringify(thread.values, null, 2);
  }
}
