/* The task page. One REST fetch when it opens and one after each reconnect; from then on the live event
 * stream drives it: each status event names the task's `allowed_actions`, which alone decide the action
 * buttons. (A status event from before events carried them makes the page ask the server once.) */

import { describeError, taskPath } from '../api.js';
import { $, setMessage, toJson } from '../dom.js';
import { LiveConnection } from '../live.js';
import { isFinal } from '../status.js';
import { TaskModel } from '../task-model.js';
import { EventLog } from './event-log.js';
import { TaskRenderer } from './task-render.js';

const CONTROL_REPLY_TIMEOUT_MS = 5000;
const SYNC_DELAY_MS = 50;        // a move comes as a burst of events: ask the server once per burst
const FETCH_RETRY_MS = 3000;

export class TaskView {
  constructor(session, api, graphs) {
    this.session = session;
    this.api = api;
    this.graphs = graphs;
    this.page = new TaskRenderer();
    this.el = {  // what the user types and clicks; the renderer draws the rest
      title: $('task-title'),
      loadError: $('task-load-error'),
      pause: $('pause-button'),
      resume: $('resume-button'),
      cancel: $('cancel-button'),
      remove: $('delete-button'),
      controlError: $('control-error'),
      answerForm: $('answer-form'),
      answer: $('answer-input'),
      answerError: $('answer-error'),
      statePanel: $('task-state').closest('details'),
    };
    this.log = new EventLog($('event-log'), $('event-count'));
    this.taskId = null;
    this.generation = 0;  // bumped on every open/close; stale callbacks check it
    this.model = new TaskModel();
    this.live = null;
    this.isFetching = false;
    this.isFetchQueued = false;
    this.isSyncForced = false;
    this.syncTimer = null;
    this.retryTimer = null;
    this.renderFrame = 0;
    this.isBusy = false;
    this.busyTimer = null;
    this.isGone = false;
  }

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
    // Events do not carry the graph's state: while its panel is open, fetch it at each checkpoint.
    this.el.statePanel.addEventListener('toggle', () => { if (this.el.statePanel.open) this.requestSync(true); });
  }

  open(taskId) {
    if (this.taskId === taskId) return;
    this.close();
    this.taskId = taskId;
    this.generation += 1;
    const generation = this.generation;
    this.model = new TaskModel();
    this.isFetching = false;
    this.isFetchQueued = false;
    this.isSyncForced = false;
    this.isBusy = false;
    this.isGone = false;

    document.title = `${taskId} · redis_persist`;
    this.el.title.textContent = taskId;
    this.log.clear();
    this.el.answer.value = '';
    setMessage(this.el.controlError, '');
    setMessage(this.el.answerError, '');
    setMessage(this.el.loadError, '');
    this.render();

    this.graphs.load().then(() => { if (generation === this.generation) this.scheduleRender(); });
    this.fetchSnapshot();
    this.live = new LiveConnection(this.session, taskId, {
      onEvent: (event) => this.onEvent(event),
      onReply: (reply) => this.onReply(reply),
      onNotice: (text) => setMessage(this.el.controlError, text),
      onOpen: ({ isReconnect }) => { if (isReconnect) this.fetchSnapshot(); },  // catch up on what events do not carry
      onDisconnect: () => this.failPendingControl('Connection lost before the server answered.'),
      onState: (state, detail) => this.page.showConnection(state, detail),
      onGone: () => this.markGone(),
      onPoll: () => this.fetchSnapshot(),
      isSettled: () => this.isGone || isFinal(this.model.allowedActions),
    });
    this.live.start();
  }

  close() {
    if (this.taskId === null) return;
    this.generation += 1;
    this.taskId = null;
    clearTimeout(this.busyTimer);
    clearTimeout(this.syncTimer);
    clearTimeout(this.retryTimer);
    this.syncTimer = null;
    cancelAnimationFrame(this.renderFrame);
    this.renderFrame = 0;
    if (this.live) { this.live.stop('idle'); this.live = null; }
    document.title = 'redis_persist';
  }

  // ---- data

  /** GET the task (coalesced: one request in flight, one queued) and make it the model's base. */
  async fetchSnapshot() {
    if (this.taskId === null || this.isGone) return;
    if (this.isFetching) { this.isFetchQueued = true; return; }
    const generation = this.generation;
    this.isFetching = true;
    this.model.beginFetch();
    try {
      const snapshot = await this.api.getTask(this.taskId);
      if (generation !== this.generation) return;
      this.model.applySnapshot(snapshot);
      setMessage(this.el.loadError, '');
      this.scheduleRender();
      if (this.model.isBehindEvents) this.requestSync();  // events moved the task on while we asked
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 404) {
        this.markGone();
        if (this.live) this.live.stop('closed');
      } else {
        setMessage(this.el.loadError, `Cannot load the task: ${error.message}`);
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.fetchSnapshot(), FETCH_RETRY_MS);
      }
    } finally {
      if (generation === this.generation) {
        this.isFetching = false;
        if (this.isFetchQueued) { this.isFetchQueued = false; this.fetchSnapshot(); }
      }
    }
  }

  /** Ask the server for the task soon if events made the snapshot stale (or `force`). */
  requestSync(force = false) {
    if (force) this.isSyncForced = true;
    if (this.syncTimer !== null) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      const isForced = this.isSyncForced;
      this.isSyncForced = false;
      if (isForced || this.model.isBehindEvents) this.fetchSnapshot();
    }, SYNC_DELAY_MS);
  }

  onEvent(event) {
    this.log.append(event);
    this.model.apply(event);
    if (event.type === 'status') this.requestSync();  // fetches only if the event left allowed_actions unknown
    else if (event.type === 'node_completed' && this.el.statePanel.open) this.requestSync(true);
    this.scheduleRender();
  }

  markGone() {
    this.isGone = true;
    this.model = new TaskModel();
    setMessage(this.el.loadError, `Task "${this.taskId}" does not exist (or was deleted).`);
    this.render();
  }

  // ---- controls

  /** Whether the user may use `action` now: the task's allowed_actions, the key's role, no request pending. */
  may(action) {
    const allowed = this.model.allowedActions;
    return this.session.canOperate && !this.isBusy && Array.isArray(allowed) && allowed.includes(action);
  }

  setBusy(isBusy) {
    this.isBusy = isBusy;
    clearTimeout(this.busyTimer);
    if (isBusy) {
      this.busyTimer = setTimeout(() => { this.isBusy = false; this.render(); this.requestSync(true); },
        CONTROL_REPLY_TIMEOUT_MS);
    }
    this.render();
  }

  failPendingControl(message) {
    if (!this.isBusy) return;
    this.setBusy(false);
    setMessage(this.el.controlError, message);
  }

  /** Send a control over the WebSocket when it is open, else over REST. */
  async send(message, restPath, restBody) {
    this.setBusy(true);
    if (this.live && this.live.send(message)) return;  // the reply arrives in onReply
    const generation = this.generation;
    try {
      await this.api.request('POST', restPath, restBody);
      if (generation !== this.generation) return;
      if (message.type === 'input') this.el.answer.value = '';  // its effect arrives as events
    } catch (error) {
      if (generation === this.generation) this.showControlFailure(message.type, error.message);
    } finally {
      if (generation === this.generation) this.setBusy(false);
    }
  }

  control(action) {
    if (!this.may(action)) return;
    setMessage(this.el.controlError, '');
    this.send({ type: action }, `${taskPath(this.taskId)}/${action}`, action === 'resume' ? {} : undefined);
  }

  /** Parse the answer box: JSON when it parses, otherwise the plain text as a string. */
  parseAnswer() {
    const raw = this.el.answer.value.trim();
    if (raw === '') return { error: 'Type an answer first.' };
    try { return { value: JSON.parse(raw) }; } catch { return { value: raw }; }
  }

  sendAnswer() {
    if (!this.may('answer')) return;
    setMessage(this.el.answerError, '');
    const answer = this.parseAnswer();
    if (answer.error) { setMessage(this.el.answerError, answer.error); return; }
    this.send({ type: 'input', input: answer.value }, `${taskPath(this.taskId)}/resume`, { input: answer.value });
  }

  onReply(reply) {
    const request = reply.request && typeof reply.request === 'object' ? reply.request.type : reply.request;
    this.setBusy(false);
    if (reply.ok === false) {
      // The reply carries the REST error body: `detail` says what went wrong, `error` is its code.
      this.showControlFailure(request, describeError(reply.code ?? 'reply', 'rejected by the server',
        { detail: reply.detail ?? reply.error }));
      return;
    }
    if (request === 'input') this.el.answer.value = '';  // the events show the move (or the pause request)
  }

  showControlFailure(request, message) {
    const text = typeof message === 'string' ? message : toJson(message);
    const what = request ? `${request === 'input' ? 'Answer' : request[0].toUpperCase() + request.slice(1)} failed: ` : '';
    const target = request === 'input' && this.model.task && this.model.task.status === 'waiting_input'
      ? this.el.answerError : this.el.controlError;
    setMessage(target, `${what}${text}`);
  }

  async remove() {
    if (!this.may('delete')) return;
    if (!window.confirm(`Delete task ${this.taskId} with its checkpoints and events?`)) return;
    try {
      await this.api.request('DELETE', taskPath(this.taskId));
      location.hash = '#/';
    } catch (error) {
      setMessage(this.el.controlError, error.message);
    }
  }

  // ---- rendering

  /** Render at the next frame: a burst of events (a replayed history) costs one render. */
  scheduleRender() {
    if (this.renderFrame) return;
    this.renderFrame = requestAnimationFrame(() => { this.renderFrame = 0; this.render(); });
  }

  render() {
    const nodeNames = this.model.task ? this.graphs.nodeNames(this.model.task.graph_name) : [];
    this.page.render(this.model, { isGone: this.isGone, may: (action) => this.may(action), nodeNames });
  }
}
