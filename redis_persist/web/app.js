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

let isStarted = false;
const session = new Session({ onReady: () => ready(), onSignedOut: () => stopViews() });
const api = new ApiClient(session);
const graphs = new GraphCatalog(api);
const startForm = new StartForm(api, graphs);
const taskList = new TaskList(api);
const taskView = new TaskView(session, api, graphs);
const threadsView = new ThreadsView(api);

/** Show the view the URL hash names; stop the others' polling and streams. */
function route() {
  const task = location.hash.match(TASK_ROUTE);
  const threads = location.hash.match(THREADS_ROUTE);
  show($('list-view'), !task && !threads);
  show($('task-view'), Boolean(task));
  show($('threads-view'), Boolean(threads));
  if (!threads) threadsView.close();
  if (task || threads) taskList.stop();
  if (!task) {
    taskView.close();
    session.actingTenant = null;
  }
  if (task) {
    const tenant = task[2] && session.isAdmin ? task[2] : null;
    if (tenant !== session.actingTenant) taskView.close();
    session.actingTenant = tenant;
    taskView.open(decodeURIComponent(task[1]));
  } else if (threads) {
    threadsView.open(threads[1] ? decodeURIComponent(threads[1]) : null, threads[2] || null);
  } else {
    taskList.start();
  }
}

function ready() {
  if (!isStarted) {
    isStarted = true;
    startForm.init();
    taskList.init();
    taskView.init();
    window.addEventListener('hashchange', route);
  }
  route();
}

function stopViews() {
  taskList.stop();
  taskView.close();
  threadsView.close();
  for (const view of ['list-view', 'task-view', 'threads-view']) show($(view), false);
}

session.bindLoginForm();
session.start();
