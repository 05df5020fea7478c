/* What the task page knows about its task: the last REST snapshot with every event received since folded
 * in. Events are the source of truth for status, allowed_actions (each status event names them), progress,
 * nodes, interrupt and error; the snapshot adds what events do not carry (the state at the last
 * checkpoint, attempts) and stands in until the first status event arrives. */

export class TaskModel {
  constructor() {
    this.task = null;              // the last GET /api/tasks/{id} answer + events: what the page shows
    this.completedNodes = new Set();
    this.waitingNode = null;       // the node that called interrupt(); current_node is null while waiting
    this.eventsSinceFetch = null;  // events received while a snapshot request is in flight
  }

  /** A snapshot request starts: events from now on may or may not be in its answer. */
  beginFetch() {
    this.eventsSinceFetch = [];
  }

  /** Take a snapshot as the new base and fold in again the events that arrived while it was fetched. */
  applySnapshot(snapshot) {
    const progress = Math.max(Number(snapshot.progress) || 0, Number(this.task && this.task.progress) || 0);
    this.task = { ...snapshot, progress };
    for (const node of snapshot.completed_nodes || []) this.completedNodes.add(node);
    for (const event of this.eventsSinceFetch || []) this.fold(event);
    this.eventsSinceFetch = null;
  }

  apply(event) {
    if (this.eventsSinceFetch) this.eventsSinceFetch.push(event);
    this.fold(event);
  }

  /** A status event without allowed_actions (written before events carried them) left them unknown. */
  get isBehindEvents() {
    return this.task !== null && this.task.allowed_actions === null;
  }

  /** The controls the task accepts now: from its newest status event, else the snapshot; null if unknown. */
  get allowedActions() {
    const task = this.task;
    return task && Array.isArray(task.allowed_actions) ? task.allowed_actions : null;
  }

  fold(event) {
    if (event.type === 'node_completed' && event.node) this.completedNodes.add(event.node);
    if ((event.type === 'node_started' || event.type === 'interrupt') && event.node) this.waitingNode = event.node;
    const task = this.task;
    if (!task) return;  // the snapshot folds it in when it arrives
    if (event.ts && !(task.updated_at > event.ts)) task.updated_at = event.ts;
    switch (event.type) {
      case 'status':
        if (!event.status) break;
        task.status = event.status;
        task.allowed_actions = Array.isArray(event.allowed_actions) ? event.allowed_actions : null;
        task.pause_requested = false;  // a move carries out or drops a pending pause request
        if (event.status !== 'running' && event.status !== 'waiting_input') task.current_node = null;
        if (event.status === 'completed') task.progress = 100;
        if (event.status === 'queued') task.error = null;  // resume clears the last error
        if (event.owner) task.owner = event.owner;
        break;
      case 'pause_requested':
        task.pause_requested = true;
        break;
      case 'node_started':
        if (event.node) task.current_node = event.node;
        break;
      case 'node_completed':
        if (task.current_node === event.node) task.current_node = null;
        if (event.node) {
          task.checkpoint = event.node;
          task.completed_nodes = [...new Set([...(task.completed_nodes || []), event.node])];
        }
        if (event.checkpoint_id) task.checkpoint_id = event.checkpoint_id;
        this.raiseProgress(event.progress);
        break;
      case 'progress':
        // Overall task progress when the node reported a 0..1 fraction.
        if (event.node_progress !== undefined) this.raiseProgress(event.progress);
        break;
      case 'interrupt':
        task.interrupt = event.interrupt;
        break;
      case 'error':
        task.error = event.error;
        break;
      default:
        break;
    }
  }

  raiseProgress(value) {
    if (value === null || value === undefined || !Number.isFinite(Number(value))) return;
    this.task.progress = Math.max(Number(this.task.progress) || 0, Number(value));
  }
}
