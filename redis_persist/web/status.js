/* The status vocabulary of the dashboard. Which controls a task accepts is the server's answer
 * (`allowed_actions` in the task JSON, from core/status.py's table); nothing here copies that table. */

/** Every task status, in the order the status filter lists them. */
export const STATUSES = ['queued', 'running', 'paused', 'waiting_input', 'completed', 'failed', 'cancelled'];

/** A task nothing can move any more (deleting it is all that is left): its stream has nothing more to say. */
export function isFinal(allowedActions) {
  return Array.isArray(allowedActions) && allowedActions.every((action) => action === 'delete');
}
