/* The console's event bus: modules tell each other what happened without knowing who listens.
 *
 * Events: 'ready' (logged in; /me's answer), 'reset' (logged out), 'agent' (the agent changed),
 * 'locale', 'view', 'connected' (socket up; re-subscribe), 'frame:<t>' (a socket frame),
 * 'session:lost', 'escape', 'conversation:open' / 'conversation:update' / 'conversation:none',
 * 'composer:mode', 'chat:queued', 'chat:message', 'chats:unread'.
 * Listeners run in the order they were added (module evaluation order, see main.js).
 */

/** @type {Map<string, Array<(data: any) => void>>} */
const listeners = new Map();

/** @param {string} name @param {(data: any) => void} fn */
export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, []);
  listeners.get(name).push(fn);
}

/** @param {string} name @param {any} [data] */
export function emit(name, data) {
  (listeners.get(name) || []).forEach(function (fn) {
    try { fn(data); } catch (e) { if (window.console) window.console.error(name, e); }
  });
}
