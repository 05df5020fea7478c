/* The start form: pick a graph, give an initial state (and maybe an id), POST /api/tasks/execute. */

import { $, h, setMessage } from '../dom.js';

const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export class StartForm {
  constructor(api, graphs) {
    this.api = api;
    this.graphs = graphs;
    this.form = $('start-form');
    this.select = $('graph-select');
    this.nodes = $('graph-nodes');
    this.state = $('initial-state');
    this.taskId = $('task-id-input');
    this.error = $('form-error');
    this.button = $('start-button');
  }

  init() {
    this.form.addEventListener('submit', (event) => { event.preventDefault(); this.submit(); });
    this.select.addEventListener('change', () => this.showNodes());
    this.state.addEventListener('input', () => {
      this.state.setAttribute('aria-invalid', String(this.parseState().error !== null));
      setMessage(this.error, '');
    });
    this.taskId.addEventListener('input', () => setMessage(this.error, ''));
    this.graphs.onError = (message) => setMessage(this.error, `Cannot load graphs: ${message}`);
    this.graphs.load().then((byName) => this.fillGraphs(byName));
  }

  fillGraphs(byName) {
    const previous = this.select.value;
    this.select.replaceChildren(...[...byName.keys()].map((name) => h('option', { value: name }, name)));
    if (byName.size === 0) this.select.append(h('option', { value: '' }, 'No graphs registered'));
    if (byName.has(previous)) this.select.value = previous;
    this.select.disabled = byName.size === 0;
    this.button.disabled = byName.size === 0;
    setMessage(this.error, '');
    this.showNodes();
  }

  showNodes() {
    this.nodes.textContent = this.graphs.nodeNames(this.select.value).join(' → ');
  }

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
  }

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
      const created = await this.api.request('POST', '/api/tasks/execute', body);
      this.taskId.value = '';
      location.hash = `#/tasks/${encodeURIComponent(created.task_id)}`;
    } catch (error) {
      setMessage(this.error, error.message);
    } finally {
      this.button.disabled = false;
    }
  }
}
