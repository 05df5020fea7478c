/* The REST client: JSON in and out, the session's key and tenant scope on every call, readable errors;
 * a 401 sends the page back to the key prompt. */

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const taskPath = (id) => `/api/tasks/${encodeURIComponent(id)}`;

/** Turn a FastAPI error body ({"detail": ...}) into one readable line. */
export function describeError(status, statusText, body) {
  const detail = body && typeof body === 'object' && 'detail' in body ? body.detail : body;
  let text;
  if (Array.isArray(detail)) {
    text = detail.map((item) => {
      if (item && typeof item === 'object' && item.msg) {
        const where = Array.isArray(item.loc) ? item.loc.filter((p) => p !== 'body').join('.') : '';
        return where ? `${where}: ${item.msg}` : item.msg;
      }
      return typeof item === 'string' ? item : JSON.stringify(item);
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

const READ_TIMEOUT_MS = 15000;

export class ApiClient {
  constructor(session) {
    this.session = session;
  }

  /** One JSON call; resolves to the parsed body, rejects with an ApiError. */
  async request(method, path, body) {
    const init = { method, headers: { Accept: 'application/json', ...this.session.headers() } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    // A read nobody answers fails (and its caller asks again) rather than hanging the view for good.
    if (method === 'GET') init.signal = AbortSignal.timeout(READ_TIMEOUT_MS);
    let response;
    let text;
    try {
      response = await fetch(this.session.scoped(path), init);
      text = await response.text();
    } catch {
      throw new ApiError(0, 'Cannot reach the server.', null);
    }
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = text; }
    }
    const message = describeError(response.status, response.statusText, data);
    if (response.status === 401) this.session.requireKey(message);
    if (!response.ok) throw new ApiError(response.status, message, data);
    return data;
  }

  getTask(taskId) { return this.request('GET', taskPath(taskId)); }
}
