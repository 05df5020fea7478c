/* One task's live event feed. A WebSocket first (events out, control messages in); Server-Sent Events
 * when the WebSocket never opens (a proxy that drops upgrades); polling the task when neither works.
 * Reconnects with backoff and resumes after the last event it delivered, so each event reaches the
 * view once and in order. */

const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 10000;
const STABLE_CONNECTION_MS = 3000;  // a connection this old resets the backoff
const WS_FAILURES_BEFORE_SSE = 2;   // WebSocket attempts that never opened, before trying SSE
const SSE_FAILURES_BEFORE_POLL = 3;
const POLL_MS = 3000;
const POLLS_BETWEEN_RETRIES = 10;   // while polling, try the streams again every 30 s

/** Compare event ids: Redis stream ids ("ms-seq") or plain integers. */
export function compareEventIds(a, b) {
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

/** Read a text/event-stream body, calling onData(parsed JSON) for each event's data. */
async function readEventStream(body, onData) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = block.split(/\r?\n/).filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, '')).join('\n');
      if (!data) continue;  // a `: keep-alive` comment
      try { onData(JSON.parse(data)); } catch { /* not JSON: skip it */ }
    }
  }
}

export class LiveConnection {
  /**
   * handlers: onEvent(event) for each new logged event; onReply(reply) for answers to send();
   * onNotice(text) for a server error frame; onOpen({isReconnect, transport}) when a stream opens;
   * onDisconnect() when it closes (a control sent over it will get no reply);
   * onState(state, {transport, delayMs}); onGone() for an unknown or deleted task; onPoll() each
   * poll while no stream works; isSettled() -> true when nothing more can happen to the task.
   */
  constructor(session, taskId, handlers) {
    this.session = session;
    this.taskId = taskId;
    this.handlers = handlers;
    this.transport = 'ws';
    this.failures = 0;             // attempts of this transport in a row that never opened
    this.openedTransports = new Set();
    this.hasOpened = false;        // a later open is a reconnect
    this.reconnectAttempts = 0;
    this.openedAt = 0;
    this.lastEventId = null;
    this.seenEventIds = new Set();
    this.socket = null;
    this.stream = null;            // the AbortController of the SSE request
    this.reconnectTimer = null;
    this.pollTimer = null;
    this.isStopped = false;
  }

  start() { this.connect(); }

  /** Close whatever is open; `state` is what the indicator shows afterwards. */
  stop(state = 'idle') {
    this.isStopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pollTimer);
    if (this.socket) { const socket = this.socket; this.socket = null; socket.close(1000, 'view closed'); }
    if (this.stream) { const stream = this.stream; this.stream = null; stream.abort(); }
    this.setState(state);
  }

  get canSend() { return this.socket !== null && this.socket.readyState === WebSocket.OPEN; }

  /** Send a control message over the WebSocket; false when none is open (use REST then). */
  send(message) {
    if (!this.canSend) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  connect() {
    if (this.isStopped) return;
    if (this.transport === 'ws') this.openSocket();
    else if (this.transport === 'sse') this.openStream();
    else this.startPolling();
  }

  pathAfterLastEvent(base) {
    const query = this.lastEventId !== null ? `?after=${encodeURIComponent(this.lastEventId)}` : '';
    return this.session.scoped(`${base}${query}`);
  }

  openSocket() {
    this.setState(this.hasOpened || this.reconnectAttempts > 0 ? 'reconnecting' : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}${this.pathAfterLastEvent(`/ws/tasks/${encodeURIComponent(this.taskId)}`)}`;
    let socket;
    try {
      socket = new WebSocket(url, this.session.wsProtocols());
    } catch {
      this.lost(false);
      return;
    }
    this.socket = socket;
    let isOpen = false;
    socket.addEventListener('open', () => {
      if (socket !== this.socket) return;
      isOpen = true;
      this.opened();
    });
    socket.addEventListener('message', (message) => {
      if (socket !== this.socket) return;
      let data;
      try { data = JSON.parse(message.data); } catch { return; }
      this.receive(data);
    });
    socket.addEventListener('close', (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (event.code === 4404) { this.gone(); return; }  // the server closes 4000 + HTTP status
      this.lost(isOpen);
    });
  }

  async openStream() {
    this.setState(this.hasOpened || this.reconnectAttempts > 0 ? 'reconnecting' : 'connecting');
    const stream = new AbortController();
    this.stream = stream;
    let isOpen = false;
    try {
      const response = await fetch(this.pathAfterLastEvent(`/api/tasks/${encodeURIComponent(this.taskId)}/events`), {
        headers: { Accept: 'text/event-stream', ...this.session.headers() }, signal: stream.signal, cache: 'no-store',
      });
      if (stream !== this.stream) return;
      if (response.status === 404) { this.stream = null; this.gone(); return; }
      if (response.status === 401) { this.session.requireKey('The server refused the key.'); return; }
      if (response.ok && response.body) {
        isOpen = true;
        this.opened();
        await readEventStream(response.body, (data) => { if (stream === this.stream) this.receive(data); });
      }
    } catch {
      // unreachable server, a cut stream, or stop(): decided below
    }
    if (stream !== this.stream) return;
    this.stream = null;
    this.lost(isOpen);  // the server ends the stream once the task is final
  }

  startPolling() {
    clearInterval(this.pollTimer);
    this.setState('polling');
    let polls = 0;
    this.handlers.onPoll();
    this.pollTimer = setInterval(() => {
      if (this.handlers.isSettled()) { this.stop('closed'); return; }
      this.handlers.onPoll();
      polls += 1;
      if (polls % POLLS_BETWEEN_RETRIES === 0 && !this.socket && !this.stream) {
        this.transport = 'ws';
        this.failures = WS_FAILURES_BEFORE_SSE - 1;  // one WebSocket try, then one SSE round, then polling again
        this.openSocket();
      }
    }, POLL_MS);
  }

  opened() {
    clearInterval(this.pollTimer);
    this.failures = 0;
    this.openedAt = Date.now();
    this.openedTransports.add(this.transport);
    const isReconnect = this.hasOpened;
    this.hasOpened = true;
    this.handlers.onOpen({ isReconnect, transport: this.transport });
    this.setState('connected');
  }

  receive(data) {
    if (!data || typeof data !== 'object') return;
    if (data.type === 'reply') { this.handlers.onReply(data); return; }
    if (data.id === undefined || data.id === null) {
      // Not a logged event: only surface errors.
      if (data.type === 'error' || data.error) {
        const detail = data.detail ?? data.error ?? 'Server error';
        this.handlers.onNotice(typeof detail === 'string' ? detail : JSON.stringify(detail));
      }
      return;
    }
    const id = String(data.id);
    if (this.seenEventIds.has(id)) return;
    this.seenEventIds.add(id);
    if (this.lastEventId === null || compareEventIds(id, this.lastEventId) > 0) this.lastEventId = id;
    this.handlers.onEvent(data);
  }

  gone() {
    this.handlers.onGone();
    this.stop('closed');
  }

  /** The stream closed (or never opened): reconnect, fall back to another transport, or stop. */
  lost(wasOpen) {
    if (this.isStopped) return;
    this.handlers.onDisconnect();
    if (!wasOpen) this.failures += 1;
    if (this.openedAt && Date.now() - this.openedAt >= STABLE_CONNECTION_MS) this.reconnectAttempts = 0;
    this.openedAt = 0;
    if (this.handlers.isSettled()) { this.stop('closed'); return; }
    if (!this.openedTransports.has(this.transport)) {
      if (this.transport === 'ws' && this.failures >= WS_FAILURES_BEFORE_SSE) this.fallBackTo('sse');
      else if (this.transport === 'sse' && this.failures >= SSE_FAILURES_BEFORE_POLL) this.fallBackTo('poll');
    }
    this.scheduleReconnect();
  }

  fallBackTo(transport) {
    this.transport = transport;
    this.failures = 0;
    this.reconnectAttempts = 0;
  }

  scheduleReconnect() {
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.reconnectAttempts);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.reconnectAttempts += 1;
    this.setState('reconnecting', delay);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  setState(state, delayMs) {
    this.handlers.onState(state, { transport: this.transport, delayMs });
  }
}
