/* DOM and formatting helpers shared by the dashboard's views. */

export const $ = (id) => document.getElementById(id);

/** Create an element with attributes and children (strings become text). */
export function h(tag, attrs, ...children) {
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

export function show(node, visible) { node.hidden = !visible; }

/** Show `text` in a message node, or hide it when there is none. */
export function setMessage(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

export function toJson(value) {
  try { return JSON.stringify(value, null, 2); } catch { return String(value); }
}

export function parseTime(value) {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number') return new Date(value > 1e12 ? value : value * 1000);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function clockTime(value) {
  const date = parseTime(value);
  return date ? date.toLocaleTimeString([], { hour12: false }) : '';
}

export function fullTime(value) {
  const date = parseTime(value);
  return date ? date.toLocaleString([], { hour12: false }) : '—';
}

export function relativeTime(value) {
  const date = parseTime(value);
  if (!date) return '—';
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return date.toLocaleDateString();
}

export function clampProgress(value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return 0;
  return Math.max(0, Math.min(100, Math.round(number)));
}

export function setProgress(bar, value) {
  const percent = clampProgress(value);
  bar.setAttribute('aria-valuenow', String(percent));
  bar.firstElementChild.style.width = `${percent}%`;
}

export function progressBar(testId, value) {
  const bar = h('div', {
    class: 'progress', role: 'progressbar', 'data-testid': testId,
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0,
  }, h('div', { class: 'progress-fill' }));
  setProgress(bar, value);
  return bar;
}

export function setBadge(badge, status) {
  badge.textContent = status || '…';
  badge.dataset.status = status || '';
  badge.className = `badge status-${status || 'unknown'}`;
}
