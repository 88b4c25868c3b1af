/* The chats view's two lists: Waiting (the queue, in arrival order; "Pick up") and My
 * conversations (by latest activity), with unread counts (remembered per agent in
 * localStorage) and the visitor's typing. Live facts win over older list snapshots. */
import { api } from '../core/api.js';
import { $, banner, h, show } from '../core/dom.js';
import { emit, on } from '../core/events.js';
import { t } from '../core/i18n.js';
import { fmt, visitorDevice, visitorLabel, visitorSource } from '../core/format.js';
import { me, teamName } from '../core/me.js';
import { clearVisitorTyping, openConversation, renderOpen } from './conversation.js';
import { convPath, idOf, placeOf, shortId, state } from './state.js';

function seenKey() { return 'beckon.console.seen.' + idOf(me.agent && me.agent.id); }

export function loadSeen() {
  try { state.seen = JSON.parse(localStorage.getItem(seenKey()) || '{}') || {}; } catch (e) { state.seen = {}; }
}

function saveSeen() {
  // Only conversations still on screen are worth remembering; keeps storage bounded.
  var keep = {};
  Object.keys(state.seen).forEach(function (id) {
    if (state.convs.has(id) || id === state.openId) keep[id] = state.seen[id];
  });
  state.seen = keep;
  try { localStorage.setItem(seenKey(), JSON.stringify(keep)); } catch (e) { /* private mode */ }
}

export function addUnread(msg) {
  var id = idOf(msg.conversation_id);
  if (msg.author !== 'visitor' || id === state.openId) return;
  if (msg.seq <= (state.seen[id] || 0)) return;
  if (!state.unread.has(id)) state.unread.set(id, new Map());
  state.unread.get(id).set(idOf(msg.id), msg.seq);
}

export function markSeen(id, seq) {
  if (seq > (state.seen[id] || 0)) {
    state.seen[id] = seq;
    saveSeen();
  }
  state.unread.delete(id);
}

function unreadCount(id) {
  var m = state.unread.get(id);
  return m ? m.size : 0;
}

export function newerMessage(a, b) {
  if (!a) return b || null;
  if (!b) return a;
  return b.seq >= a.seq ? b : a;
}

// Keeps the newest last message we know of: a list snapshot can lag behind message frames.
function storeConv(conv) {
  var id = idOf(conv.id);
  var old = state.convs.get(id);
  var copy = Object.assign({}, conv);
  if (old) copy.last_message = newerMessage(old.last_message, conv.last_message);
  if (placeOf(copy)) {
    state.convs.set(id, copy);
    if (copy.last_message) addUnread(copy.last_message);
  } else {
    state.convs.delete(id);
    state.unread.delete(id);
  }
  return copy;
}

// A live fact about a conversation: from the socket or from our own POST's answer.
export function applyConversation(conv) {
  var id = idOf(conv.id);
  var before = state.convs.get(id);
  if (conv.status === 'queued' && (!before || before.status !== 'queued')) {
    emit('chat:queued', conv);  // notifications and sound (toolkit.js)
  }
  state.clock += 1;
  state.touched.set(id, state.clock);
  storeConv(conv);
  if (conv.status !== 'open' && conv.status !== 'queued') clearVisitorTyping(id);
  if (state.openId === id) {
    state.open.conv = Object.assign({}, conv);
    renderOpen();
    emit('conversation:update', state.open.conv);
  }
  renderLists();
}

export function touchedSince(id, clock) { return (state.touched.get(id) || 0) > clock; }

export function refreshLists() {
  var clock = state.clock;
  var request = ++state.listRequest;
  return Promise.all([
    api('GET', '/conversations?scope=queue'),
    api('GET', '/conversations?scope=mine'),
  ]).then(function (answers) {
    // An older snapshot that arrives after a newer one has nothing to add.
    if (request < state.listApplied || !me.agent) return;
    state.listApplied = request;
    var fresh = new Map();
    answers.forEach(function (a) {
      ((a && a.conversations) || []).forEach(function (c) { fresh.set(idOf(c.id), c); });
    });
    Array.from(state.convs.keys()).forEach(function (id) {
      if (!fresh.has(id) && !touchedSince(id, clock)) {
        state.convs.delete(id);
        state.unread.delete(id);
      }
    });
    fresh.forEach(function (c, id) {
      if (!touchedSince(id, clock)) storeConv(c);
    });
    renderLists();
  }).catch(function (e) {
    if (e.status !== 401) banner(t('chats.listFailed', { error: e.message }));
  });
}

var listRefreshTimer = null;
export function refreshListsSoon() {
  clearTimeout(listRefreshTimer);
  listRefreshTimer = setTimeout(refreshLists, 400);
}

var pickupErrorTimer = null;
export function pickupError(text) {
  var err = $('pickup-error');
  clearTimeout(pickupErrorTimer);
  err.textContent = text || '';
  show(err, !!text);
  if (text) pickupErrorTimer = setTimeout(function () { show(err, false); }, 10000);
}

function pickup(id) {
  pickupError('');
  api('POST', convPath(id, '/pickup')).then(function (data) {
    applyConversation(data.conversation);
    openConversation(idOf(data.conversation.id));
  }).catch(function (e) {
    if (e.status === 401) return;
    pickupError(e.detail || e.message);
    // "Not queued any more" means our list is stale.
    if (e.status === 409 || e.status === 404) refreshListsSoon();
  });
}

var rows = new Map(); // 'queue:id' | 'mine:id' -> row parts

// What the list answer said of the conversation's visitor (label, device, landing), if listed.
export function listedVisitor(id) {
  var row = rows.get('mine:' + id) || rows.get('queue:' + id);
  return row ? row.seen : null;
}

// Logged out: every row goes.
export function resetLists() {
  rows.forEach(function (r) { r.root.remove(); });
  rows.clear();
}

function makeRow(kind, id) {
  var root = h('li', {
    className: 'conv-row',
    testid: kind === 'queue' ? 'queue-item' : 'mine-item',
    data: { 'conversation-id': id },
    attrs: { tabindex: '0' },
  });
  var visitor = h('span', { className: 'row-visitor', testid: 'row-visitor' });
  var meta = h('span', { className: 'row-meta', testid: 'row-meta' });
  var team = h('span', { className: 'row-team' });
  var time = h('span', { className: 'row-time' });
  var preview = h('span', { className: 'row-preview' });
  var typing = h('span', { className: 'row-typing', text: t('chats.typing'), attrs: { 'data-i18n': 'chats.typing' } });
  var unread = h('span', { className: 'unread', testid: 'unread' });
  var line1 = h('div', { className: 'row-line' }, [visitor, meta, team, time]);
  var line2 = h('div', { className: 'row-line' }, [preview, typing, unread]);
  var body = h('div', { className: 'row-body' }, [line1, line2]);
  root.appendChild(body);
  if (kind === 'queue') {
    var pickupButton = h('button', { className: 'btn btn-small btn-primary', testid: 'pickup', text: t('chats.pickup'), attrs: { type: 'button', 'data-i18n': 'chats.pickup' } });
    pickupButton.addEventListener('click', function (ev) {
      ev.stopPropagation();
      pickup(id);
    });
    root.appendChild(pickupButton);
  }
  root.addEventListener('click', function () { openConversation(id); });
  root.addEventListener('keydown', function (ev) {
    if (ev.target === root && (ev.key === 'Enter' || ev.key === ' ')) {
      ev.preventDefault();
      openConversation(id);
    }
  });
  return { root: root, visitor: visitor, meta: meta, team: team, time: time, preview: preview, typing: typing, unread: unread, seen: null, asked: false };
}

function updateRow(row, conv) {
  var id = idOf(conv.id);
  // The list answer adds what the live list knows of a visitor still on the site (label,
  // device, browser, landing); socket frames do not carry it, so the row keeps it.
  if (conv.visitor) row.seen = conv.visitor;
  else if (!row.seen && !row.asked) { row.asked = true; refreshListsSoon(); }  // a row from a frame
  var label = visitorLabel((row.seen && row.seen.label) || conv.visitor_label, shortId(conv.visitor_id));
  row.visitor.textContent = label;
  row.visitor.title = label + ' · ' + idOf(conv.visitor_id);
  var meta = row.seen ? [visitorDevice(row.seen), visitorSource(row.seen)].filter(Boolean).join(' · ') : '';
  row.meta.textContent = meta;
  show(row.meta, !!meta);
  row.team.textContent = teamName(conv.team);
  var last = conv.last_message;
  row.time.textContent = fmt.time(last ? last.created_at : conv.created_at);
  var text = '';
  if (last) {
    if (last.author === 'agent') text = ((last.agent && last.agent.name) || t('chats.agent')) + ': ' + last.text;
    else text = last.text;
  }
  row.preview.textContent = text;
  row.preview.className = 'row-preview' + (last && last.author === 'system' ? ' is-system' : '');
  show(row.typing, state.typing.has(id));
  show(row.preview, !state.typing.has(id));
  var n = unreadCount(id);
  row.unread.textContent = String(n);
  // Absent rather than "0": a badge exists only when there is something unread.
  if (n > 0 && !row.unread.parentNode) row.preview.parentNode.appendChild(row.unread);
  if (n === 0 && row.unread.parentNode) row.unread.remove();
  row.root.classList.toggle('is-active', id === state.openId);
  row.root.classList.toggle('has-unread', n > 0);
  if (id === state.openId) row.root.setAttribute('aria-current', 'true');
  else row.root.removeAttribute('aria-current');
}

function activity(conv) {
  var t = conv.last_message ? conv.last_message.created_at : conv.created_at;
  var ms = Date.parse(t || '');
  return isNaN(ms) ? 0 : ms;
}

function syncList(list, kind, convs) {
  var wanted = new Set();
  convs.forEach(function (conv, index) {
    var id = idOf(conv.id);
    var key = kind + ':' + id;
    wanted.add(key);
    var row = rows.get(key);
    if (!row) {
      row = makeRow(kind, id);
      rows.set(key, row);
    }
    updateRow(row, conv);
    // Move only what is out of place, so a row under the mouse is not needlessly re-inserted.
    if (list.children[index] !== row.root) list.insertBefore(row.root, list.children[index] || null);
  });
  rows.forEach(function (row, key) {
    if (key.indexOf(kind + ':') === 0 && !wanted.has(key)) {
      row.root.remove();
      rows.delete(key);
    }
  });
}

export function renderLists() {
  if (!me.agent) return;
  var queue = [];
  var mine = [];
  state.convs.forEach(function (c) {
    var place = placeOf(c);
    if (place === 'queue') queue.push(c);
    else if (place === 'mine') mine.push(c);
  });
  // The queue is served in arrival order; my conversations by latest activity.
  queue.sort(function (a, b) { return (Date.parse(a.created_at) || 0) - (Date.parse(b.created_at) || 0); });
  mine.sort(function (a, b) { return activity(b) - activity(a); });
  syncList($('queue-list'), 'queue', queue);
  syncList($('mine-list'), 'mine', mine);
  $('queue-count').textContent = queue.length ? String(queue.length) : '';
  $('mine-count').textContent = mine.length ? String(mine.length) : '';
  show($('queue-empty'), queue.length === 0);
  show($('mine-empty'), mine.length === 0);
  var total = 0;
  state.unread.forEach(function (m) { total += m.size; });
  document.title = (total ? '(' + total + ') ' : '') + t('title');
  emit('chats:unread', total);
}
export function mineOrder() {
  return Array.prototype.map.call($('mine-list').children, function (li) {
    return li.getAttribute('data-conversation-id');
  });
}

// Alt+↓ / Alt+↑: the next / previous of my conversations (then the waiting ones).

on('frame:conversation', function (f) { if (f.conversation) applyConversation(f.conversation); });
