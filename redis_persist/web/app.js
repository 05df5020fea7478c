/* redis_persist dashboard: live task list, start form, and a task view fed by
 * the task's WebSocket event stream. Plain browser JavaScript, no build step. */
(() => {
  'use strict';

  const LIST_POLL_MS = 1500;
  const TASK_POLL_MS = 3000;        // safety net beside the WebSocket
  const CONTROL_REPLY_TIMEOUT_MS = 5000;
  const RECONNECT_BASE_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  const STABLE_CONNECTION_MS = 3000; // a connection this old resets the backoff
  const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

  // Which controls are legal from which status (mirrors the contract's table).
  const LEGAL = {
    pause: new Set(['queued', 'running']),
    resume: new Set(['paused', 'failed']),
    cancel: new Set(['queued', 'running', 'paused', 'waiting_input', 'failed']),
    delete: new Set(['paused', 'waiting_input', 'completed', 'failed', 'cancelled']),
  };
  const FINAL_STATUSES = new Set(['completed', 'cancelled']);

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- helpers

  /** Create an element with attributes and children (strings become text). */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  function setMessage(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  function toJson(value) {
    try { return JSON.stringify(value, null, 2); } catch { return String(value); }
  }

  function parseTime(value) {
    if (value === null || value === undefined || value === '') return null;
    if (typeof value === 'number') return new Date(value > 1e12 ? value : value * 1000);
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  function clockTime(value) {
    const date = parseTime(value);
    return date ? date.toLocaleTimeString([], { hour12: false }) : '';
  }

  function fullTime(value) {
    const date = parseTime(value);
    return date ? date.toLocaleString([], { hour12: false }) : '—';
  }

  function relativeTime(value) {
    const date = parseTime(value);
    if (!date) return '—';
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 5) return 'just now';
    if (seconds < 60) return `${seconds}s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
    return date.toLocaleDateString();
  }

  function clampProgress(value) {
    const number = Number(value);
    if (!Number.isFinite(number)) return 0;
    return Math.max(0, Math.min(100, Math.round(number)));
  }

  /** Compare event ids: Redis stream ids ("ms-seq") or plain integers. */
  function compareEventIds(a, b) {
    const left = String(a).split('-');
    const right = String(b).split('-');
    for (let i = 0; i < Math.max(left.length, right.length); i += 1) {
      const x = (left[i] ?? '0').replace(/^0+(?=\d)/, '');
      const y = (right[i] ?? '0').replace(/^0+(?=\d)/, '');
      if (/^\d+$/.test(x) && /^\d+$/.test(y) && x.length !== y.length) return x.length - y.length;
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  }

  /** Node names of a graph from /api/graphs, without LangGraph's __start__/__end__. */
  function graphNodeNames(graph) {
    if (!graph || !Array.isArray(graph.nodes)) return [];
    return graph.nodes
      .map((node) => (typeof node === 'string' ? node : node && (node.name || node.id)))
      .filter((name) => name && !/^__.*__$/.test(name));
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** Turn a FastAPI error body ({"detail": ...}) into one readable line. */
  function describeError(status, statusText, body) {
    const detail = body && typeof body === 'object' && 'detail' in body ? body.detail : body;
    let text;
    if (Array.isArray(detail)) {
      text = detail.map((item) => {
        if (item && typeof item === 'object' && item.msg) {
          const where = Array.isArray(item.loc) ? item.loc.filter((p) => p !== 'body').join('.') : '';
          return where ? `${where}: ${item.msg}` : item.msg;
        }
        return typeof item === 'string' ? item : toJson(item);
      }).join('; ');
    } else if (detail && typeof detail === 'object') {
      text = detail.message || detail.error || JSON.stringify(detail);
    } else if (typeof detail === 'string' && detail.trim()) {
      text = detail.trim();
    } else {
      text = statusText || 'request failed';
    }
    return `Error ${status}: ${text}`;
  }

  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json', ...session.headers() } };
    path = session.scoped(path);
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, 'Cannot reach the server.', null);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = text; }
    }
    if (response.status === 401) session.requireKey(describeError(response.status, response.statusText, data));
    if (!response.ok) throw new ApiError(response.status, describeError(response.status, response.statusText, data), data);
    return data;
  }

  // ---------------------------------------------------------------- session (API key, tenant, role)

  const KEY_STORAGE = 'redis_persist.api_key';

  const session = {
    key: sessionStorage.getItem(KEY_STORAGE),
    identity: null,      // GET /api/auth/me: {auth, key_id, tenant, role}
    actingTenant: null,  // an admin looking at another tenant's task
    isStarted: false,

    headers() { return this.key ? { 'X-Api-Key': this.key } : {}; },

    /** Browsers cannot set headers on a WebSocket: the key rides as a subprotocol. */
    wsProtocols() { return this.key ? ['redis-persist', `api-key.${this.key}`] : undefined; },

    /** Add ?tenant= to task calls while an admin looks at another tenant's task. */
    scoped(path) {
      if (!this.actingTenant || !path.startsWith('/api/tasks/') && !path.startsWith('/ws/tasks/')) return path;
      return `${path}${path.includes('?') ? '&' : '?'}tenant=${encodeURIComponent(this.actingTenant)}`;
    },

    get canOperate() { return Boolean(this.identity) && ['operator', 'admin'].includes(this.identity.role); },
    get isAdmin() { return Boolean(this.identity) && this.identity.role === 'admin' && this.identity.auth; },

    /** Ask the server who this key is; start the page, or ask for a key. */
    async start() {
      let response;
      try {
        response = await fetch('/api/auth/me', { headers: { Accept: 'application/json', ...this.headers() } });
      } catch {
        setTimeout(() => this.start(), 1000);
        return;
      }
      if (response.status === 401) {
        this.requireKey(this.key ? 'That key was refused (unknown, revoked or mistyped).' : '');
        return;
      }
      this.identity = await response.json();
      this.showIdentity();
      show($('login-view'), false);
      if (!this.isStarted) {
        this.isStarted = true;
        startForm.init();
        taskList.init();
        taskView.init();
        window.addEventListener('hashchange', route);
      }
      route();
    },

    showIdentity() {
      const node = $('identity');
      const who = this.identity;
      node.replaceChildren(who.auth
        ? h('span', {}, 'Tenant ', h('strong', { 'data-testid': 'identity-tenant' }, who.tenant),
          ' · role ', h('strong', { 'data-testid': 'identity-role' }, who.role))
        : h('span', { 'data-testid': 'identity-open' }, 'Auth off: open to anyone who reaches this port'));
      show(node, true);
      show($('sign-out'), who.auth);
      show($('read-only-note'), !this.canOperate);
      show($('start-form'), this.canOperate);
    },

    /** Show the key prompt (the key was missing, wrong or revoked). */
    requireKey(message) {
      this.key = null;
      this.identity = null;
      sessionStorage.removeItem(KEY_STORAGE);
      if (this.isStarted) { taskList.stop(); taskView.close(); }
      show($('list-view'), false);
      show($('task-view'), false);
      show($('identity'), false);
      show($('sign-out'), false);
      show($('login-view'), true);
      setMessage($('login-error'), message || '');
      $('api-key-input').focus();
    },

    init() {
      $('login-form').addEventListener('submit', (event) => {
        event.preventDefault();
        const key = $('api-key-input').value.trim();
        if (!key) { setMessage($('login-error'), 'Paste an API key first.'); return; }
        this.key = key;
        sessionStorage.setItem(KEY_STORAGE, key);
        $('api-key-input').value = '';
        this.start();
      });
      $('sign-out').addEventListener('click', () => this.requireKey(''));
    },
  };

  const taskPath = (id) => `/api/tasks/${encodeURIComponent(id)}`;

  // ---------------------------------------------------------------- graphs

  const graphs = {
    byName: new Map(),
    loaded: null,

    /** Load /api/graphs once (retrying until the server answers). */
    load() {
      if (!this.loaded) {
        this.loaded = (async () => {
          for (let attempt = 0; ; attempt += 1) {
            try {
              const data = await api('GET', '/api/graphs');
              for (const graph of (data && data.graphs) || []) this.byName.set(graph.name, graph);
              return this.byName;
            } catch (error) {
              startForm.showGraphError(error.message);
              await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * 2 ** attempt)));
            }
          }
        })();
      }
      return this.loaded;
    },
  };

  // ---------------------------------------------------------------- start form

  const startForm = {
    form: $('start-form'),
    select: $('graph-select'),
    nodes: $('graph-nodes'),
    state: $('initial-state'),
    taskId: $('task-id-input'),
    error: $('form-error'),
    button: $('start-button'),

    init() {
      this.form.addEventListener('submit', (event) => { event.preventDefault(); this.submit(); });
      this.select.addEventListener('change', () => this.showNodes());
      this.state.addEventListener('input', () => {
        this.state.setAttribute('aria-invalid', String(this.parseState().error !== null));
        setMessage(this.error, '');
      });
      this.taskId.addEventListener('input', () => setMessage(this.error, ''));
      graphs.load().then((byName) => this.fillGraphs(byName));
    },

    fillGraphs(byName) {
      const previous = this.select.value;
      this.select.replaceChildren(...[...byName.keys()].map((name) => h('option', { value: name }, name)));
      if (byName.size === 0) this.select.append(h('option', { value: '' }, 'No graphs registered'));
      if (byName.has(previous)) this.select.value = previous;
      this.select.disabled = byName.size === 0;
      this.button.disabled = byName.size === 0;
      setMessage(this.error, '');
      this.showNodes();
    },

    showGraphError(message) {
      setMessage(this.error, `Cannot load graphs: ${message}`);
    },

    showNodes() {
      const names = graphNodeNames(graphs.byName.get(this.select.value));
      this.nodes.textContent = names.join(' → ');
    },

    /** Parse the initial_state textarea: {value} or {error}. */
    parseState() {
      const raw = this.state.value.trim();
      if (raw === '') return { value: {}, error: null };
      let value;
      try {
        value = JSON.parse(raw);
      } catch (error) {
        return { value: null, error: `Initial state is not valid JSON: ${error.message}` };
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
        return { value: null, error: `Initial state must be a JSON object like {"step_seconds": 1}, not ${kind}.` };
      }
      return { value, error: null };
    },

    async submit() {
      setMessage(this.error, '');
      const graphName = this.select.value;
      if (!graphName) { setMessage(this.error, 'Choose a graph.'); return; }
      const state = this.parseState();
      if (state.error) {
        this.state.setAttribute('aria-invalid', 'true');
        setMessage(this.error, state.error);
        this.state.focus();
        return;
      }
      const taskId = this.taskId.value.trim();
      if (taskId && !TASK_ID_PATTERN.test(taskId)) {
        setMessage(this.error, 'Task id must be 1–64 characters of A–Z, a–z, 0–9, "_" or "-".');
        this.taskId.focus();
        return;
      }
      const body = { graph_name: graphName, initial_state: state.value };
      if (taskId) body.task_id = taskId;

      this.button.disabled = true;
      try {
        const created = await api('POST', '/api/tasks/execute', body);
        this.taskId.value = '';
        location.hash = `#/tasks/${encodeURIComponent(created.task_id)}`;
      } catch (error) {
        setMessage(this.error, error.message);
      } finally {
        this.button.disabled = false;
      }
    },
  };

  // ---------------------------------------------------------------- task list

  function progressBar(testId, value) {
    const bar = h('div', {
      class: 'progress', role: 'progressbar', 'data-testid': testId,
      'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0,
    }, h('div', { class: 'progress-fill' }));
    setProgress(bar, value);
    return bar;
  }

  function setProgress(bar, value) {
    const percent = clampProgress(value);
    bar.setAttribute('aria-valuenow', String(percent));
    bar.firstElementChild.style.width = `${percent}%`;
  }

  function setBadge(badge, status) {
    badge.textContent = status || '…';
    badge.dataset.status = status || '';
    badge.className = `badge status-${status || 'unknown'}`;
  }

  const taskList = {
    body: $('task-rows'),
    error: $('list-error'),
    empty: $('list-empty'),
    filter: $('status-filter'),
    rows: new Map(),
    timer: null,
    isLoading: false,

    init() {
      this.filter.addEventListener('change', () => this.refresh());
      this.body.addEventListener('click', (event) => this.openRow(event.target));
      this.body.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); this.openRow(event.target); }
      });
    },

    openRow(target) {
      const row = target.closest('tr[data-task-id]');
      if (!row) return;
      const tenant = row.dataset.tenant ? `?tenant=${encodeURIComponent(row.dataset.tenant)}` : '';
      location.hash = `#/tasks/${encodeURIComponent(row.dataset.taskId)}${tenant}`;
    },

    start() {
      if (this.timer) return;
      this.refresh();
      this.timer = setInterval(() => this.refresh(), LIST_POLL_MS);
    },

    stop() {
      clearInterval(this.timer);
      this.timer = null;
    },

    async refresh() {
      if (this.isLoading) return;
      this.isLoading = true;
      try {
        const status = this.filter.value;
        const query = `limit=50${status ? `&status=${encodeURIComponent(status)}` : ''}`;
        const data = await api('GET', `/api/tasks?${query}`);
        this.render((data && data.tasks) || []);
        setMessage(this.error, '');
      } catch (error) {
        setMessage(this.error, `Cannot load tasks: ${error.message}`);
      } finally {
        this.isLoading = false;
      }
    },

    render(tasks) {
      const keep = new Set();
      tasks.forEach((task, index) => {
        const rowKey = `${task.tenant || ''}/${task.task_id}`;  // admins see the same id in several tenants
        keep.add(rowKey);
        let row = this.rows.get(rowKey);
        if (!row) {
          row = this.createRow(task);
          this.rows.set(rowKey, row);
        }
        this.updateRow(row, task);
        if (this.body.children[index] !== row) this.body.insertBefore(row, this.body.children[index] || null);
      });
      for (const [id, row] of this.rows) {
        if (!keep.has(id)) { row.remove(); this.rows.delete(id); }
      }
      show(this.empty, tasks.length === 0);
    },

    createRow(task) {
      const tenant = task.tenant ? h('span', { class: 'tenant-tag', 'data-testid': 'row-tenant' }, `${task.tenant} /`) : '';
      return h('tr', { 'data-testid': 'task-row', dataset: { taskId: task.task_id, tenant: task.tenant || '' },
        tabindex: 0, title: 'Open task' },
        h('td', {}, tenant, h('code', { 'data-testid': 'row-id' }, task.task_id)),
        h('td', { 'data-testid': 'row-graph' }),
        h('td', {}, h('span', { class: 'badge', 'data-testid': 'row-status' })),
        h('td', { class: 'col-progress' }, progressBar('row-progress', 0)),
        h('td', { 'data-testid': 'row-node' }),
        h('td', { 'data-testid': 'row-updated', class: 'muted' }));
    },

    updateRow(row, task) {
      const [, graphCell, statusCell, progressCell, nodeCell, updatedCell] = row.children;
      row.dataset.status = task.status;
      graphCell.textContent = task.graph_name;
      setBadge(statusCell.firstElementChild, task.status);
      setProgress(progressCell.firstElementChild, task.progress);
      nodeCell.textContent = task.current_node || '';
      updatedCell.textContent = relativeTime(task.updated_at);
      updatedCell.title = fullTime(task.updated_at);
    },
  };

  // ---------------------------------------------------------------- task view

  const CONNECTION_LABELS = {
    idle: '',
    connecting: 'Connecting…',
    connected: 'Live',
    reconnecting: 'Reconnecting…',
    closed: 'Stream closed',
  };

  /** Short human summary of an event for the log. */
  function describeEvent(event) {
    switch (event.type) {
      case 'status': return `status → ${event.status}${event.by ? ` (by key ${event.by})` : ''}`;
      case 'node_started': return `${event.node} started`;
      case 'node_completed':
        return `${event.node} completed${event.progress !== undefined ? ` (${clampProgress(event.progress)}%)` : ''}`;
      case 'progress': {
        const extra = event.message || event.detail || '';
        const part = Number(event.node_progress);
        const value = Number.isFinite(part) && event.node_progress !== null
          ? ` ${Math.round(part * 100)}%`
          : event.progress !== undefined ? ` ${event.progress}` : '';
        return `${event.node || ''}${value}${extra ? ` — ${extra}` : ''}`.trim();
      }
      case 'interrupt': return `waiting for input: ${JSON.stringify(event.interrupt)}`;
      case 'error': return `error: ${event.error}`;
      case 'task_paused':
        return `paused: ${event.reason || ''}${event.action_required ? ` — ${event.action_required}` : ''}`;
      default: {
        const { id, type, task_id: taskId, ts, ...rest } = event;
        const text = JSON.stringify(rest);
        return text === '{}' ? '' : text;
      }
    }
  }

  const taskView = {
    el: {
      title: $('task-title'),
      status: $('task-status'),
      connection: $('connection-state'),
      loadError: $('task-load-error'),
      progress: $('progress-bar'),
      progressText: $('progress-text'),
      nodes: $('node-list'),
      pause: $('pause-button'),
      resume: $('resume-button'),
      cancel: $('cancel-button'),
      remove: $('delete-button'),
      controlError: $('control-error'),
      errorPanel: $('task-error-panel'),
      error: $('task-error'),
      answerPanel: $('answer-panel'),
      answerForm: $('answer-form'),
      payload: $('interrupt-payload'),
      question: $('interrupt-question'),
      answer: $('answer-input'),
      answerButton: $('answer-button'),
      answerError: $('answer-error'),
      meta: $('task-meta'),
      state: $('task-state'),
      log: $('event-log'),
      eventCount: $('event-count'),
    },

    taskId: null,
    generation: 0,     // bumped on every open/close; stale callbacks check it
    task: null,
    seenEventIds: new Set(),
    lastEventId: null,
    completedNodes: new Set(),
    hasSeenFinalStatus: false,
    waitingNode: null,  // the node that called interrupt(); current_node is null while waiting
    socket: null,
    socketOpenedAt: 0,
    reconnectAttempts: 0,
    reconnectTimer: null,
    pollTimer: null,
    isFetching: false,
    isFetchQueued: false,
    staleSkips: 0,
    isBusy: false,
    busyTimer: null,
    isGone: false,

    init() {
      this.el.pause.addEventListener('click', () => this.control('pause'));
      this.el.resume.addEventListener('click', () => this.control('resume'));
      this.el.cancel.addEventListener('click', () => this.control('cancel'));
      this.el.remove.addEventListener('click', () => this.remove());
      this.el.answerForm.addEventListener('submit', (event) => { event.preventDefault(); this.sendAnswer(); });
      this.el.answer.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); this.sendAnswer(); }
      });
      this.el.answer.addEventListener('input', () => setMessage(this.el.answerError, ''));
    },

    open(taskId) {
      if (this.taskId === taskId) return;
      this.close();
      this.taskId = taskId;
      this.generation += 1;
      this.task = null;
      this.seenEventIds = new Set();
      this.lastEventId = null;
      this.completedNodes = new Set();
      this.hasSeenFinalStatus = false;
      this.waitingNode = null;
      this.reconnectAttempts = 0;
      this.isFetching = false;
      this.isFetchQueued = false;
      this.isBusy = false;
      this.isGone = false;

      document.title = `${taskId} · redis_persist`;
      this.el.title.textContent = taskId;
      this.el.log.replaceChildren();
      this.el.answer.value = '';
      setMessage(this.el.controlError, '');
      setMessage(this.el.answerError, '');
      setMessage(this.el.loadError, '');
      this.render();

      graphs.load().then(() => this.render());
      this.fetchTask();
      this.connect();
      this.pollTimer = setInterval(() => this.fetchTask(), TASK_POLL_MS);
    },

    close() {
      if (this.taskId === null) return;
      this.generation += 1;
      this.taskId = null;
      clearInterval(this.pollTimer);
      clearTimeout(this.reconnectTimer);
      clearTimeout(this.busyTimer);
      if (this.socket) {
        const socket = this.socket;
        this.socket = null;
        socket.close(1000, 'view closed');
      }
      this.setConnection('idle');
      document.title = 'redis_persist';
    },

    // ---- data

    async fetchTask() {
      if (this.taskId === null) return;
      if (this.isFetching) { this.isFetchQueued = true; return; }
      const generation = this.generation;
      const eventsAtStart = this.seenEventIds.size;
      this.isFetching = true;
      try {
        const task = await api('GET', taskPath(this.taskId));
        if (generation !== this.generation) return;
        // Events that arrived meanwhile may be newer than this snapshot; the queued
        // refetch will bring a fresh one, so don't step the page backwards.
        const isStale = this.seenEventIds.size !== eventsAtStart && this.isFetchQueued;
        if (isStale && this.staleSkips < 3) { this.staleSkips += 1; return; }
        this.staleSkips = 0;
        this.task = task;
        for (const node of task.completed_nodes || []) this.completedNodes.add(node);
        setMessage(this.el.loadError, '');
        this.render();
      } catch (error) {
        if (generation !== this.generation) return;
        if (error.status === 404) {
          this.isGone = true;
          this.task = null;
          setMessage(this.el.loadError, `Task "${this.taskId}" does not exist (or was deleted).`);
          this.stopStreaming();
          this.render();
        } else {
          setMessage(this.el.loadError, `Cannot load the task: ${error.message}`);
        }
      } finally {
        if (generation === this.generation) {
          this.isFetching = false;
          if (this.isFetchQueued) { this.isFetchQueued = false; this.fetchTask(); }
        }
      }
    },

    stopStreaming() {
      clearInterval(this.pollTimer);
      clearTimeout(this.reconnectTimer);
      if (this.socket) { const socket = this.socket; this.socket = null; socket.close(1000, 'task gone'); }
      this.setConnection('closed');
    },

    // ---- WebSocket

    connect() {
      const generation = this.generation;
      const query = this.lastEventId !== null ? `?after=${encodeURIComponent(this.lastEventId)}` : '';
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const url = `${scheme}//${location.host}${session.scoped(`/ws/tasks/${encodeURIComponent(this.taskId)}${query}`)}`;
      this.setConnection(this.reconnectAttempts > 0 ? 'reconnecting' : 'connecting');

      let socket;
      try {
        socket = new WebSocket(url, session.wsProtocols());
      } catch {
        this.scheduleReconnect();
        return;
      }
      this.socket = socket;
      socket.addEventListener('open', () => {
        if (generation !== this.generation || socket !== this.socket) return;
        this.socketOpenedAt = Date.now();
        this.setConnection('connected');
        this.fetchTask(); // catch up on anything that changed while disconnected
      });
      socket.addEventListener('message', (message) => {
        if (generation !== this.generation || socket !== this.socket) return;
        let data;
        try { data = JSON.parse(message.data); } catch { return; }
        this.handleMessage(data);
      });
      socket.addEventListener('close', (event) => {
        if (generation !== this.generation || socket !== this.socket) return;
        this.socket = null;
        if (event.code === 4404) this.isGone = true; // the server closes 4000+HTTP status for unknown tasks
        this.failPendingControl('Connection lost before the server answered.');
        if (this.socketOpenedAt && Date.now() - this.socketOpenedAt >= STABLE_CONNECTION_MS) this.reconnectAttempts = 0;
        this.socketOpenedAt = 0;
        const isFinal = this.task && FINAL_STATUSES.has(this.task.status);
        if (this.isGone || (isFinal && (this.hasSeenFinalStatus || this.reconnectAttempts >= 3))) {
          this.setConnection('closed');
          return;
        }
        this.scheduleReconnect();
      });
    },

    scheduleReconnect() {
      const base = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.reconnectAttempts);
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      this.reconnectAttempts += 1;
      this.setConnection('reconnecting', delay);
      const generation = this.generation;
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = setTimeout(() => {
        if (generation !== this.generation) return;
        this.fetchTask();
        this.connect();
      }, delay);
    },

    setConnection(state, delayMs) {
      const node = this.el.connection;
      node.dataset.state = state;
      let label = CONNECTION_LABELS[state] || state;
      if (state === 'reconnecting' && delayMs) label = `Reconnecting in ${Math.max(1, Math.round(delayMs / 1000))}s…`;
      node.textContent = label;
      node.title = state === 'connected' ? 'Receiving live events over WebSocket' : label;
      node.hidden = state === 'idle';
    },

    handleMessage(data) {
      if (!data || typeof data !== 'object') return;
      if (data.type === 'reply') { this.handleReply(data); return; }
      if (data.id === undefined || data.id === null) {
        // Not a logged event: only surface errors.
        if (data.type === 'error' || data.error) {
          const detail = data.detail ?? data.error ?? 'Server error';
          setMessage(this.el.controlError, typeof detail === 'string' ? detail : toJson(detail));
        }
        return;
      }
      const id = String(data.id);
      if (this.seenEventIds.has(id)) return;
      this.seenEventIds.add(id);
      if (this.lastEventId === null || compareEventIds(id, this.lastEventId) > 0) this.lastEventId = id;
      this.appendEvent(data);
      this.applyEvent(data);
      this.render();
      this.fetchTask();
    },

    /** Update the local task at once so the page reacts before the refetch returns. */
    applyEvent(event) {
      const task = this.task;
      if (event.type === 'node_completed' && event.node) this.completedNodes.add(event.node);
      if (event.type === 'status' && FINAL_STATUSES.has(event.status)) this.hasSeenFinalStatus = true;
      if (event.type === 'node_started' && event.node) this.waitingNode = event.node;
      if (event.type === 'interrupt' && event.node) this.waitingNode = event.node;
      if (!task) return;
      switch (event.type) {
        case 'status':
          if (event.status) task.status = event.status;
          if (event.status !== 'running' && event.status !== 'waiting_input') task.current_node = null;
          if (event.status === 'completed') task.progress = 100;
          break;
        case 'node_started':
          if (event.node) task.current_node = event.node;
          break;
        case 'node_completed':
          if (task.current_node === event.node) task.current_node = null;
          this.raiseProgress(event.progress);
          break;
        case 'progress':
          // Overall task progress when the node reported a 0..1 fraction.
          if (event.node_progress !== undefined) this.raiseProgress(event.progress);
          break;
        case 'interrupt':
          task.interrupt = event.interrupt;
          break;
        case 'error':
          task.error = event.error;
          break;
        default:
          break;
      }
    },

    raiseProgress(value) {
      if (value === null || value === undefined || !Number.isFinite(Number(value))) return;
      this.task.progress = Math.max(Number(this.task.progress) || 0, Number(value));
    },

    appendEvent(event) {
      const log = this.el.log;
      const isNearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      log.append(h('li', {
        class: `event type-${event.type}`,
        'data-testid': 'event',
        dataset: { eventId: String(event.id), type: event.type || '', node: event.node || '' },
      },
      h('time', { class: 'event-time', datetime: parseTime(event.ts)?.toISOString() }, clockTime(event.ts)),
      h('span', { class: 'event-type' }, event.type || '?'),
      h('span', { class: 'event-text' }, describeEvent(event))));
      if (isNearBottom) log.scrollTop = log.scrollHeight;
      this.el.eventCount.textContent = String(log.children.length);
    },

    // ---- controls

    isSocketOpen() {
      return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
    },

    setBusy(isBusy) {
      this.isBusy = isBusy;
      clearTimeout(this.busyTimer);
      if (isBusy) {
        this.busyTimer = setTimeout(() => { this.isBusy = false; this.render(); this.fetchTask(); }, CONTROL_REPLY_TIMEOUT_MS);
      }
      this.render();
    },

    failPendingControl(message) {
      if (!this.isBusy) return;
      this.setBusy(false);
      setMessage(this.el.controlError, message);
    },

    /** Send a control over the WebSocket when it is open, else over REST. */
    async send(message, restPath, restBody) {
      if (this.isSocketOpen()) {
        this.setBusy(true);
        this.socket.send(JSON.stringify(message));
        return; // the reply arrives in handleReply
      }
      this.setBusy(true);
      try {
        await api('POST', restPath, restBody);
        if (message.type === 'input') this.el.answer.value = '';
      } catch (error) {
        this.showControlFailure(message.type, error.message);
      } finally {
        this.setBusy(false);
        this.fetchTask();
      }
    },

    control(action) {
      if (this.isBusy || !this.task || !LEGAL[action].has(this.task.status)) return;
      setMessage(this.el.controlError, '');
      this.send({ type: action }, `${taskPath(this.taskId)}/${action}`, action === 'resume' ? {} : undefined);
    },

    /** Parse the answer box: JSON when it parses, otherwise the plain text as a string. */
    parseAnswer() {
      const raw = this.el.answer.value.trim();
      if (raw === '') return { error: 'Type an answer first.' };
      try { return { value: JSON.parse(raw) }; } catch { return { value: raw }; }
    },

    sendAnswer() {
      if (this.isBusy || !this.task || this.task.status !== 'waiting_input') return;
      setMessage(this.el.answerError, '');
      const answer = this.parseAnswer();
      if (answer.error) { setMessage(this.el.answerError, answer.error); return; }
      this.send({ type: 'input', input: answer.value }, `${taskPath(this.taskId)}/resume`, { input: answer.value });
    },

    handleReply(reply) {
      const request = reply.request && typeof reply.request === 'object' ? reply.request.type : reply.request;
      this.setBusy(false);
      if (reply.ok === false) {
        this.showControlFailure(request, reply.error || reply.detail || 'rejected by the server');
      } else {
        if (request === 'input') this.el.answer.value = '';
        if (this.task && reply.status) { this.task.status = reply.status; this.render(); }
      }
      this.fetchTask();
    },

    showControlFailure(request, message) {
      const text = typeof message === 'string' ? message : toJson(message);
      const what = request ? `${request === 'input' ? 'Answer' : request[0].toUpperCase() + request.slice(1)} failed: ` : '';
      const target = request === 'input' && this.task && this.task.status === 'waiting_input'
        ? this.el.answerError : this.el.controlError;
      setMessage(target, `${what}${text}`);
    },

    async remove() {
      if (!this.task || !LEGAL.delete.has(this.task.status)) return;
      if (!window.confirm(`Delete task ${this.taskId} with its checkpoints and events?`)) return;
      try {
        await api('DELETE', taskPath(this.taskId));
        location.hash = '#/';
      } catch (error) {
        setMessage(this.el.controlError, error.message);
      }
    },

    // ---- rendering

    render() {
      const task = this.task;
      const status = task ? task.status : null;
      setBadge(this.el.status, this.isGone ? 'unknown' : status);

      const progress = task ? clampProgress(task.progress) : 0;
      setProgress(this.el.progress, progress);
      this.el.progressText.textContent = `${progress}%`;
      this.el.progress.dataset.status = status || '';

      this.renderNodes(task);

      const canControl = (action) => session.canOperate && Boolean(task) && !this.isBusy && LEGAL[action].has(status);
      this.el.pause.disabled = !canControl('pause');
      this.el.resume.disabled = !canControl('resume');
      this.el.cancel.disabled = !canControl('cancel');
      this.el.remove.disabled = !canControl('delete');

      const isWaiting = status === 'waiting_input';
      show(this.el.answerPanel, isWaiting);
      if (isWaiting) {
        const payload = task.interrupt === undefined || task.interrupt === null ? '(no payload)' : toJson(task.interrupt);
        if (this.el.payload.textContent !== payload) this.el.payload.textContent = payload;
        const question = task.interrupt && typeof task.interrupt === 'object' ? task.interrupt.question : null;
        setMessage(this.el.question, typeof question === 'string' ? question : '');
      }
      this.el.answerButton.disabled = !isWaiting || this.isBusy || !session.canOperate;

      const hasError = Boolean(task && task.error) && status !== 'completed';
      show(this.el.errorPanel, hasError);
      this.el.error.textContent = hasError ? String(task.error) : '';

      this.renderMeta(task);
      const stateText = task ? toJson(task.state ?? null) : '';
      if (this.el.state.textContent !== stateText) this.el.state.textContent = stateText;
    },

    renderNodes(task) {
      const graph = task ? graphs.byName.get(task.graph_name) : null;
      const names = graphNodeNames(graph);
      for (const node of (task && task.completed_nodes) || []) if (!names.includes(node)) names.push(node);
      const list = this.el.nodes;
      if (list.dataset.names !== names.join('\n')) {
        list.dataset.names = names.join('\n');
        list.replaceChildren(...names.map((name) => h('li', { class: 'node', 'data-testid': `node-${name}`, dataset: { node: name } },
          h('span', { class: 'node-icon', 'aria-hidden': 'true' }),
          h('span', { class: 'node-name' }, name),
          h('span', { class: 'node-state' }))));
      }
      const isWaiting = Boolean(task) && task.status === 'waiting_input';
      const activeNode = task && (task.current_node || (isWaiting ? this.waitingNode : null));
      for (const item of list.children) {
        const name = item.dataset.node;
        let state = 'pending';
        if (this.completedNodes.has(name)) state = 'done';
        else if (activeNode === name) state = 'running';
        item.dataset.state = state;
        item.classList.toggle('is-waiting', state === 'running' && isWaiting);
        let label = state;
        if (state === 'running' && isWaiting) label = 'waiting for input';
        else if (state === 'running' && task.status !== 'running') label = task.status;
        item.lastElementChild.textContent = label;
        item.title = `${name}: ${label}`;
      }
    },

    renderMeta(task) {
      const rows = task ? [
        ['Graph', task.graph_name],
        ['Current node', task.current_node || '—'],
        ['Last checkpoint', task.checkpoint ? `${task.checkpoint}${task.checkpoint_id ? ` (${task.checkpoint_id})` : ''}` : '—'],
        ['Attempts', task.attempts ?? '—'],
        ['Owner', task.owner || '—'],
        ['Served by', task.node || '—'],
        ['Created', fullTime(task.created_at)],
        ['Updated', fullTime(task.updated_at)],
      ] : [];
      const key = JSON.stringify(rows);
      if (this.el.meta.dataset.key === key) return;
      this.el.meta.dataset.key = key;
      this.el.meta.replaceChildren(...rows.flatMap(([label, value]) => [h('dt', {}, label), h('dd', {}, String(value))]));
    },
  };

  // ---------------------------------------------------------------- routing

  function route() {
    const match = location.hash.match(/^#\/tasks\/([^/?]+)\/?(?:\?tenant=([A-Za-z0-9_-]+))?$/);
    const listView = $('list-view');
    const taskViewNode = $('task-view');
    if (location.hash.startsWith('#/threads')) {  // threads.js owns these views
      taskList.stop();
      taskView.close();
      show(listView, false);
      show(taskViewNode, false);
    } else if (match) {
      taskList.stop();
      show(listView, false);
      show(taskViewNode, true);
      const tenant = match[2] && session.isAdmin ? match[2] : null;
      if (tenant !== session.actingTenant) taskView.close();
      session.actingTenant = tenant;
      taskView.open(decodeURIComponent(match[1]));
    } else {
      taskView.close();
      session.actingTenant = null;
      show(taskViewNode, false);
      show(listView, true);
      taskList.start();
    }
  }

  session.init();
  session.start();
})();
