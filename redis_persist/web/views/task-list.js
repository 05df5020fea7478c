/* The task list: the newest tasks, polled while the list is shown, filtered by status; a row opens its task. */

import { $, fullTime, h, progressBar, relativeTime, setBadge, setMessage, setProgress, show } from '../dom.js';
import { STATUSES } from '../status.js';

const POLL_MS = 1500;
const PAGE_SIZE = 50;

export class TaskList {
  constructor(api) {
    this.api = api;
    this.body = $('task-rows');
    this.error = $('list-error');
    this.empty = $('list-empty');
    this.filter = $('status-filter');
    this.rows = new Map();
    this.timer = null;
    this.isLoading = false;
  }

  init() {
    this.filter.append(...STATUSES.map((status) => h('option', { value: status }, status)));
    this.filter.addEventListener('change', () => this.refresh());
    this.body.addEventListener('click', (event) => this.openRow(event.target));
    this.body.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); this.openRow(event.target); }
    });
  }

  openRow(target) {
    const row = target.closest('tr[data-task-id]');
    if (!row) return;
    const tenant = row.dataset.tenant ? `?tenant=${encodeURIComponent(row.dataset.tenant)}` : '';
    location.hash = `#/tasks/${encodeURIComponent(row.dataset.taskId)}${tenant}`;
  }

  start() {
    if (this.timer) return;
    this.refresh();
    this.timer = setInterval(() => this.refresh(), POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async refresh() {
    if (this.isLoading) return;
    this.isLoading = true;
    try {
      const status = this.filter.value;
      const query = `limit=${PAGE_SIZE}${status ? `&status=${encodeURIComponent(status)}` : ''}`;
      const data = await this.api.request('GET', `/api/tasks?${query}`);
      this.render((data && data.tasks) || []);
      setMessage(this.error, '');
    } catch (error) {
      setMessage(this.error, `Cannot load tasks: ${error.message}`);
    } finally {
      this.isLoading = false;
    }
  }

  render(tasks) {
    const keep = new Set();
    tasks.forEach((task, index) => {
      const rowKey = `${task.tenant || ''}/${task.task_id}`;  // admins see the same id in several tenants
      keep.add(rowKey);
      let row = this.rows.get(rowKey);
      if (!row) {
        row = createRow(task);
        this.rows.set(rowKey, row);
      }
      updateRow(row, task);
      if (this.body.children[index] !== row) this.body.insertBefore(row, this.body.children[index] || null);
    });
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) { row.remove(); this.rows.delete(id); }
    }
    show(this.empty, tasks.length === 0);
  }
}

function createRow(task) {
  const tenant = task.tenant ? h('span', { class: 'tenant-tag', 'data-testid': 'row-tenant' }, `${task.tenant} /`) : '';
  return h('tr', { 'data-testid': 'task-row', dataset: { taskId: task.task_id, tenant: task.tenant || '' },
    tabindex: 0, title: 'Open task' },
    h('td', {}, tenant, h('code', { 'data-testid': 'row-id' }, task.task_id)),
    h('td', { 'data-testid': 'row-graph' }),
    h('td', {}, h('span', { class: 'badge', 'data-testid': 'row-status' })),
    h('td', { class: 'col-progress' }, progressBar('row-progress', 0)),
    h('td', { 'data-testid': 'row-node' }),
    h('td', { 'data-testid': 'row-updated', class: 'muted' }));
}

function updateRow(row, task) {
  const [, graphCell, statusCell, progressCell, nodeCell, updatedCell] = row.children;
  row.dataset.status = task.status;
  graphCell.textContent = task.graph_name;
  setBadge(statusCell.firstElementChild, task.status);
  setProgress(progressCell.firstElementChild, task.progress);
  nodeCell.textContent = task.current_node || '';
  updatedCell.textContent = relativeTime(task.updated_at);
  updatedCell.title = fullTime(task.updated_at);
}
