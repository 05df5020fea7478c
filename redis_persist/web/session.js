/* Who is using the page: the API key (this tab's session storage), the identity the server gives it
 * (tenant, role), the tenant an admin is looking into, and the key prompt. */

import { $, h, setMessage, show } from './dom.js';

const KEY_STORAGE = 'redis_persist.api_key';
const RETRY_MS = 1000;
// A request the server or a proxy never answers must not leave the page blank: give up on it and ask again.
const IDENTITY_TIMEOUT_MS = 5000;

export class Session {
  /** onReady(): the server accepted the key (or needs none); onSignedOut(): stop everything shown. */
  constructor({ onReady, onSignedOut }) {
    this.onReady = onReady;
    this.onSignedOut = onSignedOut;
    this.key = sessionStorage.getItem(KEY_STORAGE);
    this.identity = null;      // GET /api/auth/me: {auth, key_id, tenant, role}
    this.actingTenant = null;  // an admin looking at another tenant's task
  }

  headers() { return this.key ? { 'X-Api-Key': this.key } : {}; }

  /** Browsers cannot set headers on a WebSocket: the key rides as a subprotocol. */
  wsProtocols() { return this.key ? ['redis-persist', `api-key.${this.key}`] : undefined; }

  /** Add ?tenant= to task calls while an admin looks at another tenant's task. */
  scoped(path) {
    if (!this.actingTenant || !path.startsWith('/api/tasks/') && !path.startsWith('/ws/tasks/')) return path;
    return `${path}${path.includes('?') ? '&' : '?'}tenant=${encodeURIComponent(this.actingTenant)}`;
  }

  get canOperate() { return Boolean(this.identity) && ['operator', 'admin'].includes(this.identity.role); }

  get isAdmin() { return Boolean(this.identity) && this.identity.role === 'admin' && this.identity.auth; }

  bindLoginForm() {
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
  }

  /** Ask the server who this key is; start the page, or ask for a key. */
  async start() {
    let response;
    let identity;
    try {
      response = await fetch('/api/auth/me', {
        headers: { Accept: 'application/json', ...this.headers() },
        signal: AbortSignal.timeout(IDENTITY_TIMEOUT_MS),
      });
      if (response.status !== 401) identity = await response.json();
    } catch {  // unreachable, unanswered, or not our JSON (a proxy's error page): ask again
      setTimeout(() => this.start(), RETRY_MS);
      return;
    }
    if (response.status === 401) {
      this.requireKey(this.key ? 'That key was refused (unknown, revoked or mistyped).' : '');
      return;
    }
    this.identity = identity;
    this.showIdentity();
    show($('login-view'), false);
    this.onReady();
  }

  showIdentity() {
    const who = this.identity;
    $('identity').replaceChildren(who.auth
      ? h('span', {}, 'Tenant ', h('strong', { 'data-testid': 'identity-tenant' }, who.tenant),
        ' · role ', h('strong', { 'data-testid': 'identity-role' }, who.role))
      : h('span', { 'data-testid': 'identity-open' }, 'Auth off: open to anyone who reaches this port'));
    show($('identity'), true);
    show($('sign-out'), who.auth);
    show($('read-only-note'), !this.canOperate);
    show($('start-form'), this.canOperate);
  }

  /** Show the key prompt (the key was missing, wrong or revoked). */
  requireKey(message) {
    this.key = null;
    this.identity = null;
    sessionStorage.removeItem(KEY_STORAGE);
    this.onSignedOut();
    show($('identity'), false);
    show($('sign-out'), false);
    show($('login-view'), true);
    setMessage($('login-error'), message || '');
    $('api-key-input').focus();
  }
}
