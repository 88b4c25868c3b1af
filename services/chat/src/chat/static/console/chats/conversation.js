/* The open conversation of the chats view: its header (visitor, status, team, agent), the
 * notice of why the agent cannot reply, closing it, and its timeline: messages in seq order,
 * private notes, the invitation that opened it and transfers by time, the visitor typing. */
import { api } from '../core/api.js';
import { $, banner, h, show } from '../core/dom.js';
import { emit, on } from '../core/events.js';
import { fmt, visitorLabel } from '../core/format.js';
import { t } from '../core/i18n.js';
import { me, teamName } from '../core/me.js';
import { views } from '../core/views.js';
import { autosize, confirmPending, placePending, stopAgentTyping } from './composer.js';
import {
  addUnread, applyConversation, listedVisitor, markSeen, newerMessage, refreshListsSoon, renderLists, touchedSince,
} from './lists.js';
import { canReply, convPath, idOf, isMine, shortId, state, timeOf } from './state.js';

// Safety net only: if the visitor's "off" frame is lost, the indicator must not stay forever.
var VISITOR_TYPING_TTL_MS = 20000;

// Opens a conversation from anywhere (a notification, the Answers view): the chats view first.
export function showConversation(id) {
  views.show('chats');
  openConversation(idOf(id));
}

export function openConversation(id) {
  if (!me.agent) return;
  if (state.openId === id && state.open) {
    $('reply-input').focus();
    return;
  }
  stopAgentTyping();
  if (state.openId) state.drafts.set(state.openId, $('reply-input').value);
  state.openId = id;
  state.open = { conv: state.convs.get(id) || null, byId: new Map(), order: [], loaded: false, notes: new Set(), events: new Map() };
  $('messages').textContent = '';
  var input = $('reply-input');
  input.value = state.drafts.get(id) || '';
  autosize();
  // Messages sent earlier from this conversation that still await their echo.
  state.pending.forEach(function (p) { if (p.convId === id) placePending(p); });
  state.unread.delete(id);
  renderOpen();
  renderLists();
  loadOpen();
  if (canReply(state.open.conv)) input.focus();
}

export function loadOpen() {
  var id = state.openId;
  if (!id) return Promise.resolve();
  var clock = state.clock;
  return api('GET', convPath(id)).then(function (data) {
    if (state.openId !== id) return;
    if (!touchedSince(id, clock) || !state.open.conv) state.open.conv = data.conversation;
    if (data.opening) addOpening(data.opening);
    (data.messages || []).forEach(function (m) { addMessage(m, false); });
    (data.notes || []).forEach(addNote);
    (data.transfers || []).forEach(addTransfer);
    state.open.loaded = true;
    emit('conversation:open', state.open.conv);
    markSeen(id, maxSeq());
    renderOpen();
    renderLists();
    scrollToEnd(true);
  }).catch(function (e) {
    if (e.status === 401 || state.openId !== id) return;
    if (e.status === 404) {
      state.convs.delete(id);
      renderLists();
      closeView();
      banner(t('chats.gone'));
      return;
    }
    banner(t('chats.loadFailed', { error: e.message }));
  });
}

var openRefreshTimer = null;
function reloadOpenSoon() {
  clearTimeout(openRefreshTimer);
  openRefreshTimer = setTimeout(loadOpen, 300);
}

function closeView() {
  emit('conversation:none');
  stopAgentTyping();
  state.openId = null;
  state.open = null;
  $('messages').textContent = '';
  renderOpen();
}

function maxSeq() {
  var o = state.open;
  return o && o.order.length ? o.order[o.order.length - 1].seq : 0;
}

export function renderOpen() {
  var view = $('conversation');
  var o = state.open;
  show($('no-conversation'), !o);
  show(view, !!o);
  if (!o) {
    view.removeAttribute('data-conversation-id');
    return;
  }
  view.setAttribute('data-conversation-id', state.openId);
  // The notice and typing line take room from the message list; stay pinned to the end.
  var follow = isNearBottom();
  var c = o.conv;
  var visitor = $('conv-visitor');
  // the same label as the visitor's row (a name, an e-mail or their pseudonym)
  var listed = c ? listedVisitor(idOf(c.id)) : null;
  var label = c ? visitorLabel((listed && listed.label) || c.visitor_label, '') : '';
  visitor.textContent = c ? label || t('chats.visitorId', { id: shortId(c.visitor_id) }) : t('chats.loading');
  visitor.title = c ? idOf(c.visitor_id) : '';
  var status = $('conv-status');
  status.textContent = c ? t('conv.status.' + c.status) : '';
  status.setAttribute('data-status', c ? c.status : '');
  status.className = 'badge badge-' + (c ? c.status : 'none');
  $('conv-team').textContent = c && c.team ? t('chats.team', { team: teamName(c.team) }) : '';
  $('conv-email').textContent = c && c.email ? c.email : '';
  show($('conv-email'), !!(c && c.email));
  var agentName = c && c.agent && c.agent.name;
  $('conv-agent').textContent = agentName && !isMine(c) ? t('chats.with', { name: agentName }) : '';
  show($('conv-agent'), !!(agentName && !isMine(c)));

  var replying = canReply(c);
  $('close-conversation').disabled = !replying;
  show($('close-conversation'), !c || c.status === 'open' || c.status === 'queued');
  // a private note can be written on any conversation; a reply only on one's own
  var writable = state.mode === 'note' ? !!c : replying;
  $('reply-input').disabled = !writable;
  $('reply-send').disabled = !writable;
  var notice = '';
  if (c && c.status === 'queued') notice = t('chats.notice.queued');
  else if (c && c.status === 'closed') notice = t('chats.notice.closed');
  else if (c && c.status === 'offline') notice = t('chats.notice.offline');
  else if (c && c.status === 'open' && !isMine(c)) notice = agentName ? t('chats.notice.otherNamed', { name: agentName }) : t('chats.notice.other');
  $('conv-notice').textContent = notice;
  show($('conv-notice'), !!notice);
  if (!replying) stopAgentTyping();
  renderVisitorTyping();
  if (follow) scrollToEnd(true);
}

export function closeConversation() {
  var id = state.openId;
  if (!id) return;
  var button = $('close-conversation');
  button.disabled = true;
  stopAgentTyping();
  api('POST', convPath(id, '/close')).then(function (data) {
    applyConversation(data.conversation);
  }).catch(function (e) {
    if (e.status === 401) return;
    banner(t('chats.closeFailed', { error: e.message }));
    renderOpen();
  });
}

function isNearBottom() {
  var list = $('messages');
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

export function scrollToEnd(force) {
  var list = $('messages');
  if (force || isNearBottom()) list.scrollTop = list.scrollHeight;
}

export function messageNode(msg, pending) {
  var author = msg.author || 'system';
  var li = h('li', {
    className: 'msg msg-' + author + (pending ? ' msg-local is-pending' : ''),
    testid: 'message',
    data: { author: author, id: pending ? null : idOf(msg.id), seq: pending ? null : msg.seq, 'client-id': msg.client_id, time: pending ? null : timeOf(msg.created_at) },
  });
  if (author !== 'system') {
    var name = author === 'visitor' ? t('chats.visitor') : (msg.agent && msg.agent.name) || t('chats.agent');
    var meta = h('div', { className: 'msg-meta' }, [
      h('span', { className: 'msg-author', text: name, attrs: { 'data-i18n': author === 'visitor' ? 'chats.visitor' : null } }),
      h('time', { className: 'msg-time', text: pending ? t('msg.sending') : fmt.time(msg.created_at), attrs: { datetime: pending ? null : msg.created_at } }),
    ]);
    // a visitor's reply by e-mail (chat.inbound): marked, with what it carried listed
    if (msg.channel === 'email') {
      li.classList.add('msg-email');
      meta.appendChild(h('span', { className: 'badge msg-channel', testid: 'message-email-badge', i18n: 'msg.byEmail' }));
    }
    li.appendChild(meta);
  }
  li.appendChild(h('div', { className: 'msg-text', text: msg.text == null ? '' : msg.text }));
  if (msg.channel === 'email' && msg.attachments && msg.attachments.length) li.appendChild(attachmentList(msg.attachments));
  return li;
}

// Attachments of an e-mailed reply are listed, never stored: a name and a size, no link.
function attachmentList(attachments) {
  return h('ul', { className: 'msg-attachments', testid: 'message-attachments', attrs: { 'aria-label': t('msg.attachments') } },
    attachments.map(function (a) {
      return h('li', { className: 'msg-attachment', testid: 'message-attachment', attrs: { title: t('msg.attachmentNotKept'), 'data-i18n-title': 'msg.attachmentNotKept' } }, [
        h('span', { className: 'msg-attachment-name', text: a.filename || t('msg.attachmentUnnamed') }),
        h('span', { className: 'msg-attachment-size', text: fmt.bytes(a.size) }),
      ]);
    }));
}

// Inserts a stored message of the open conversation, once, in seq order.
function addMessage(msg, live) {
  var o = state.open;
  if (!o || idOf(msg.conversation_id) !== state.openId) return;
  var id = idOf(msg.id);
  if (o.byId.has(id)) return;
  var follow = isNearBottom();
  var gap = live && o.loaded && msg.seq > maxSeq() + 1;
  var node = messageNode(msg, false);
  o.byId.set(id, { msg: msg, node: node });
  // Usually the newest: walk from the end.
  var i = o.order.length;
  while (i > 0 && o.order[i - 1].seq > msg.seq) i -= 1;
  o.order.splice(i, 0, msg);
  var list = $('messages');
  var next = i + 1 < o.order.length ? o.byId.get(idOf(o.order[i + 1].id)).node : list.querySelector('.msg-local');
  list.insertBefore(node, next || null);
  if (follow || msg.author === 'agent') scrollToEnd(true);
  // A live frame skipped some seq (e.g. lost between instances): fetch the full history.
  if (gap) reloadOpenSoon();
}

export function onMessage(msg, conversationId) {
  if (!msg) return;
  if (msg.conversation_id == null) msg.conversation_id = conversationId;
  var id = idOf(msg.conversation_id);
  confirmPending(msg);
  var conv = state.convs.get(id);
  if (conv) {
    conv.last_message = newerMessage(conv.last_message, msg);
    if (msg.seq > (conv.last_seq || 0)) conv.last_seq = msg.seq;
  } else {
    // A conversation we have not heard of yet: its conversation frame may be late.
    refreshListsSoon();
  }
  if (msg.author === 'visitor') {
    clearVisitorTyping(id);
    if (!(msg.seq <= (state.seen[id] || 0))) {
      emit('chat:message', { conversation_id: id, message: msg, open: id === state.openId });
    }
  }
  if (id === state.openId) {
    if (state.open.conv && msg.seq > (state.open.conv.last_seq || 0)) state.open.conv.last_seq = msg.seq;
    addMessage(msg, true);
    if (state.open.loaded) markSeen(id, maxSeq());
  } else {
    addUnread(msg);
  }
  renderLists();
}

// A note sits among the messages by time, in a look of its own; only agents ever get it.
function noteNode(note) {
  var li = h('li', {
    className: 'msg msg-note',
    testid: 'note',
    data: { id: idOf(note.id), time: timeOf(note.created_at) },
  });
  li.appendChild(h('div', { className: 'msg-meta' }, [
    h('span', { className: 'msg-author', text: (note.agent && note.agent.name) || t('chats.agent') }),
    h('span', { className: 'note-label', text: t('note.label'), attrs: { 'data-i18n': 'note.label' } }),
    h('time', { className: 'msg-time', text: fmt.time(note.created_at), attrs: { datetime: note.created_at } }),
  ]));
  li.appendChild(h('div', { className: 'msg-text', text: note.text == null ? '' : note.text }));
  return li;
}

export function addNote(note) {
  var o = state.open;
  if (!o || !note || idOf(note.conversation_id) !== state.openId) return;
  var id = idOf(note.id);
  if (o.notes.has(id)) return;
  o.notes.add(id);
  placeByTime(noteNode(note), note.created_at);
}

// Notes and transfers sit among the messages by time (before any message still sending).
function placeByTime(node, iso) {
  var follow = isNearBottom();
  var when = timeOf(iso) || Date.now();
  var list = $('messages');
  var before = null;
  for (var i = 0; i < list.children.length; i += 1) {
    var child = list.children[i];
    var at = Number(child.getAttribute('data-time'));
    if (child.classList.contains('msg-local') || (at && at > when)) { before = child; break; }
  }
  list.insertBefore(node, before);
  if (follow) scrollToEnd(true);
}

// The invitation that started the chat opens it here as it did on the visitor's widget:
// its words as the agent's first, from the inviting agent (or just "Invitation" when a rule
// sent it without a name), with the rule that fired.
function openingNode(opening) {
  var source = opening.personal ? t('timeline.personal')
    : t('timeline.rule', { rule: opening.rule_name || opening.rule_id || '?' });
  var li = h('li', {
    className: 'msg msg-agent msg-opening',
    testid: 'opening',
    data: { time: timeOf(opening.created_at), 'rule-id': opening.rule_id },
    attrs: { title: t('timeline.openingTitle') },
  });
  li.appendChild(h('div', { className: 'msg-meta' }, [
    h('span', { className: 'msg-author', text: (opening.agent && opening.agent.name) || t('timeline.invitation') }),
    h('span', { className: 'opening-source', testid: 'opening-source', text: source }),
    h('time', { className: 'msg-time', text: fmt.time(opening.created_at), attrs: { datetime: opening.created_at } }),
  ]));
  li.appendChild(h('div', { className: 'msg-text', text: opening.text == null ? '' : opening.text }));
  return li;
}

function addOpening(opening) {
  var o = state.open;
  if (!o || o.events.has('opening')) return;
  var node = openingNode(opening);
  o.events.set('opening', { node: node, build: openingNode, data: opening });
  var list = $('messages');
  list.insertBefore(node, list.firstChild);
}

function transferText(tr) {
  var from = (tr.from && tr.from.name) || t('timeline.queue');
  if (tr.target === 'team') {
    var text = t('timeline.toTeam', { from: from, team: me.teamNames.get(tr.to_team) || tr.to_team_name || tr.to_team });
    return tr.to && tr.to.name ? text + ' · ' + t('timeline.took', { name: tr.to.name }) : text;
  }
  return t('timeline.toAgent', { from: from, to: (tr.to && tr.to.name) || t('chats.agent') });
}

// "Anna → Ben" at its place in time, its note (agents only) attached to it.
function transferNode(tr) {
  var li = h('li', {
    className: 'msg msg-event msg-transfer',
    testid: 'transfer-event',
    data: { id: idOf(tr.id), time: timeOf(tr.created_at), target: tr.target },
    attrs: { title: t('timeline.transferTitle') },
  });
  var line = [
    h('span', { className: 'event-icon', text: '⇄', attrs: { 'aria-hidden': 'true' } }),
    h('span', { className: 'event-text', testid: 'transfer-event-text', text: transferText(tr) }),
  ];
  if (tr.by && tr.by_agent_id !== tr.from_agent_id) line.push(h('span', { className: 'event-by', text: t('timeline.by', { name: tr.by.name }) }));
  line.push(h('time', { className: 'msg-time', text: fmt.time(tr.created_at), attrs: { datetime: tr.created_at } }));
  li.appendChild(h('div', { className: 'event-line' }, line));
  if (tr.note) {
    li.appendChild(h('div', { className: 'transfer-note', testid: 'transfer-event-note' }, [
      h('span', { className: 'note-label', text: t('timeline.noteLabel') }),
      h('div', { className: 'msg-text', text: tr.note }),
    ]));
  }
  return li;
}

export function addTransfer(tr) {
  var o = state.open;
  if (!o || !tr || idOf(tr.conversation_id) !== state.openId) return;
  var key = 'transfer:' + idOf(tr.id);
  if (o.events.has(key)) return;
  var node = transferNode(tr);
  o.events.set(key, { node: node, build: transferNode, data: tr });
  placeByTime(node, tr.created_at);
}

// The opening and the transfers say things with names in them: rebuilt in a new language.
export function relabelTimeline() {
  var o = state.open;
  if (!o) return;
  o.events.forEach(function (e) {
    var fresh = e.build(e.data);
    e.node.replaceWith(fresh);
    e.node = fresh;
  });
}

export function setVisitorTyping(id, typing, preview) {
  var old = state.typing.get(id);
  if (old) clearTimeout(old.timer);
  if (typing) {
    var entry = { preview: preview || '', timer: null };
    entry.timer = setTimeout(function () { clearVisitorTyping(id); }, VISITOR_TYPING_TTL_MS);
    state.typing.set(id, entry);
  } else {
    state.typing.delete(id);
  }
  if (id === state.openId) renderVisitorTyping();
  renderLists();
}

export function clearVisitorTyping(id) {
  if (!state.typing.has(id)) return;
  setVisitorTyping(id, false, null);
}

function renderVisitorTyping() {
  var t = state.openId ? state.typing.get(state.openId) : null;
  var box = $('visitor-typing');
  var preview = t ? t.preview : '';
  $('typing-preview').textContent = preview;
  show($('typing-sep'), !!preview);
  show($('typing-preview'), !!preview);
  var follow = isNearBottom();
  show(box, !!t);
  if (follow) scrollToEnd(true);
}


// Logged out: no visitor is typing any more.
export function resetConversation() {
  state.typing.forEach(function (x) { clearTimeout(x.timer); });
}

on('frame:message', function (f) { onMessage(f.message, f.conversation_id); });
on('frame:typing', function (f) {
  if (f.who && f.who !== 'visitor') return;
  setVisitorTyping(idOf(f.conversation_id), !!f.on, f.preview);
});
on('frame:note', function (f) {
  if (f.note && idOf(f.note.conversation_id) === state.openId) addNote(f.note);
});
on('frame:transfer', function (f) { if (f.transfer) addTransfer(f.transfer); });
$('close-conversation').addEventListener('click', closeConversation);
