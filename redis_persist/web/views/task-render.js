/* Draws the task page from its model: status badge, progress, nodes, controls, answer panel, error,
 * details and state. Knows nothing of fetching or streams. */

import { $, clampProgress, fullTime, h, setBadge, setMessage, setProgress, show, toJson } from '../dom.js';

const CONNECTION_LABELS = {
  idle: '',
  connecting: 'Connecting…',
  connected: 'Live',
  reconnecting: 'Reconnecting…',
  polling: 'Polling (no live stream)',
  closed: 'Stream closed',
};
const TRANSPORT_NAMES = { ws: 'WebSocket', sse: 'Server-Sent Events' };
const ACTION_BUTTONS = { pause: 'pause-button', resume: 'resume-button', cancel: 'cancel-button',
  delete: 'delete-button', answer: 'answer-button' };

export class TaskRenderer {
  constructor() {
    this.el = {
      status: $('task-status'),
      connection: $('connection-state'),
      progress: $('progress-bar'),
      progressText: $('progress-text'),
      nodes: $('node-list'),
      errorPanel: $('task-error-panel'),
      error: $('task-error'),
      answerPanel: $('answer-panel'),
      payload: $('interrupt-payload'),
      question: $('interrupt-question'),
      meta: $('task-meta'),
      state: $('task-state'),
    };
    this.buttons = Object.fromEntries(Object.entries(ACTION_BUTTONS).map(([action, id]) => [action, $(id)]));
  }

  showConnection(state, { transport, delayMs } = {}) {
    const node = this.el.connection;
    node.dataset.state = state;
    node.dataset.transport = transport || '';
    let label = CONNECTION_LABELS[state] ?? state;
    if (state === 'reconnecting' && delayMs) label = `Reconnecting in ${Math.max(1, Math.round(delayMs / 1000))}s…`;
    node.textContent = label;
    node.title = state === 'connected' ? `Receiving live events over ${TRANSPORT_NAMES[transport] || transport}` : label;
    node.hidden = state === 'idle';
  }

  /** Draw `model`; `may(action)` says whether a control is usable; `nodeNames` are the graph's nodes. */
  render(model, { isGone, may, nodeNames }) {
    const task = model.task;
    const status = task ? task.status : null;
    setBadge(this.el.status, isGone ? 'unknown' : status);

    const progress = task ? clampProgress(task.progress) : 0;
    setProgress(this.el.progress, progress);
    this.el.progressText.textContent = `${progress}%`;
    this.el.progress.dataset.status = status || '';

    this.renderNodes(model, nodeNames);
    for (const [action, button] of Object.entries(this.buttons)) button.disabled = !may(action);

    const isWaiting = status === 'waiting_input';
    show(this.el.answerPanel, isWaiting);
    if (isWaiting) {
      const payload = task.interrupt === undefined || task.interrupt === null ? '(no payload)' : toJson(task.interrupt);
      if (this.el.payload.textContent !== payload) this.el.payload.textContent = payload;
      const question = task.interrupt && typeof task.interrupt === 'object' ? task.interrupt.question : null;
      setMessage(this.el.question, typeof question === 'string' ? question : '');
    }

    const hasError = Boolean(task && task.error) && status !== 'completed';
    show(this.el.errorPanel, hasError);
    this.el.error.textContent = hasError ? String(task.error) : '';

    this.renderMeta(task);
    const stateText = task ? toJson(task.state ?? null) : '';
    if (this.el.state.textContent !== stateText) this.el.state.textContent = stateText;
  }

  renderNodes(model, graphNodeNames) {
    const task = model.task;
    const names = [...graphNodeNames];
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
    const activeNode = task && (task.current_node || (isWaiting ? model.waitingNode : null));
    for (const item of list.children) {
      const name = item.dataset.node;
      let state = 'pending';
      if (model.completedNodes.has(name)) state = 'done';
      else if (activeNode === name) state = 'running';
      item.dataset.state = state;
      item.classList.toggle('is-waiting', state === 'running' && isWaiting);
      let label = state;
      if (state === 'running' && isWaiting) label = 'waiting for input';
      else if (state === 'running' && task.status !== 'running') label = task.status;
      item.lastElementChild.textContent = label;
      item.title = `${name}: ${label}`;
    }
  }

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
  }
}
