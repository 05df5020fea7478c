/* The task page's event log: one line per event, newest at the bottom. */

import { clampProgress, clockTime, h, parseTime } from '../dom.js';

/** Short human summary of an event for the log. */
export function describeEvent(event) {
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

export class EventLog {
  constructor(list, counter) {
    this.list = list;
    this.counter = counter;
  }

  clear() {
    this.list.replaceChildren();
    this.counter.textContent = '0';
  }

  append(event) {
    const log = this.list;
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
    this.counter.textContent = String(log.children.length);
  }
}
