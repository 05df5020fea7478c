/* redis_persist dashboard, entry module: builds the session, the REST client and the views, and routes
 * the URL hash to a view. Plain ES modules, no build step:
 *   dom.js · status.js · api.js · session.js · graphs.js · live.js · task-model.js · views/*.js */

import { ApiClient } from './api.js';
import { $, show } from './dom.js';
import { GraphCatalog } from './graphs.js';
import { Session } from './session.js';
import { StartForm } from './views/start-form.js';
import { TaskList } from './views/task-list.js';
import { TaskView } from './views/task-view.js';
import { ThreadsView } from './views/threads.js';

const TASK_ROUTE = /^#\/tasks\/([^/?]+)\/?(?:\?tenant=([A-Za-z0-9_-]+))?$/;
const THREADS_ROUTE = /^#\/threads(?:\/([^/?]+))?\/?(?:\?tenant=([A-Za-z0-9_-]+))?$/;
const VIEWS = ['list-view', 'task-view', 'threads-view'];

class Dashboard {
  constructor() {
    this.session = new Session({ onReady: () => this.ready(), onSignedOut: () => this.stopViews() });
    const api = new ApiClient(this.session);
    const graphs = new GraphCatalog(api);
    this.startForm = new StartForm(api, graphs);
    this.taskList = new TaskList(api);
    this.taskView = new TaskView(this.session, api, graphs);
    this.threadsView = new ThreadsView(api);
    this.isStarted = false;
  }

  start() {
    this.session.bindLoginForm();
    this.session.start();
  }

  /** The server accepted the key (or needs none): wire the views once, then show what the URL names. */
  ready() {
    if (!this.isStarted) {
      this.isStarted = true;
      this.startForm.init();
      this.taskList.init();
      this.taskView.init();
      window.addEventListener('hashchange', () => this.route());
    }
    this.route();
  }

  /** Show the view the URL hash names; stop the others' polling and streams. */
  route() {
    const task = location.hash.match(TASK_ROUTE);
    const threads = location.hash.match(THREADS_ROUTE);
    show($('list-view'), !task && !threads);
    show($('task-view'), Boolean(task));
    show($('threads-view'), Boolean(threads));
    if (!threads) this.threadsView.close();
    if (task || threads) this.taskList.stop();
    if (task) {
      const tenant = task[2] && this.session.isAdmin ? task[2] : null;
      if (tenant !== this.session.actingTenant) this.taskView.close();
      this.session.actingTenant = tenant;
      this.taskView.open(decodeURIComponent(task[1]));
      return;
    }
    this.taskView.close();
    this.session.actingTenant = null;
    if (threads) this.threadsView.open(threads[1] ? decodeURIComponent(threads[1]) : null, threads[2] || null);
    else this.taskList.start();
  }

  stopViews() {
    this.taskList.stop();
    this.taskView.close();
    this.threadsView.close();
    for (const view of VIEWS) show($(view), false);
  }
}

new Dashboard().start();
