/* The chats view's state, shared by its modules (lists, conversation, composer, shortcuts),
 * and the rules on a conversation row: whose it is, where it is listed, who may reply. */
import { me } from '../core/me.js';

export const state = {
  convs: new Map(),        // id -> AgentConversation, only those in Waiting or Mine
  // Every conversation change that arrives live bumps `clock`; a list or detail snapshot
  // that was requested before that change must not overwrite it.
  clock: 0,
  touched: new Map(),      // id -> clock of the last live change
  unread: new Map(),       // id -> Map(message id -> seq) of unseen visitor messages
  seen: {},                // id -> highest seq the agent has had in front of them
  typing: new Map(),       // id -> {preview, timer} while the visitor types
  drafts: new Map(),       // id -> unsent reply text
  pending: new Map(),      // client_id -> {convId, clientId, text, node, timer, failed}
  openId: null,
  open: null,              // {conv, byId: Map(id -> {msg, node}), order: [msg…], loaded, notes: Set(id), events: Map(key -> {node, build, data})}
  mode: 'reply',           // the composer writes a reply to the visitor, or a private note
  listRequest: 0,
  listApplied: 0,
};

// Forget every conversation of the agent who was logged in (timers are the caller's).
export function resetState() {
  state.convs = new Map();
  state.touched = new Map();
  state.unread = new Map();
  state.seen = {};
  state.typing = new Map();
  state.drafts = new Map();
  state.pending = new Map();
  state.openId = null;
  state.open = null;
}

export function idOf(x) { return x == null ? '' : String(x); }

export function timeOf(iso) {
  var ms = Date.parse(iso || '');
  return isNaN(ms) ? null : ms;
}

export function shortId(id) {
  id = idOf(id);
  return id.length > 12 ? id.slice(0, 8) + '…' : id;
}

export function convPath(id, suffix) {
  return '/conversations/' + encodeURIComponent(id) + (suffix || '');
}

export function isMine(conv) {
  return !!me.agent && idOf(conv.agent_id) === idOf(me.agent.id);
}

// which list shows the conversation: 'queue' (Waiting), 'mine', or none
export function placeOf(conv) {
  if (conv.status === 'queued') return 'queue';
  if (conv.status === 'open' && isMine(conv)) return 'mine';
  return null;
}

// one's own open chat; or an offline message, which is nobody's: any agent answers it, and
// the notifier mails the answer to the visitor
export function canReply(conv) {
  return !!conv && ((conv.status === 'open' && isMine(conv)) || conv.status === 'offline');
}
