/* The composer under the open conversation: a reply to the visitor (over the socket, with
 * its echo awaited and HTTP as the fallback; a failed one can be retried) or a private note;
 * "typing" sent to the visitor while the agent writes a reply; one draft per conversation. */
import { api } from '../core/api.js';
import { $, banner, h } from '../core/dom.js';
import { emit } from '../core/events.js';
import { t } from '../core/i18n.js';
import { me } from '../core/me.js';
import { send } from '../socket.js';
import { addNote, messageNode, onMessage, renderOpen, scrollToEnd } from './conversation.js';
import { canReply, convPath, state } from './state.js';

var TYPING_IDLE_MS = 3000;
// While the agent keeps typing, "on" is repeated this often so the far side never times out.
var TYPING_RESEND_MS = 2500;
// A message sent over the socket that is not echoed back in time is re-sent over HTTP
// (the same client_id stores one message, so this can never duplicate it).
var ECHO_TIMEOUT_MS = 8000;

function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
  var bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
}

export function placePending(p) {
  var node = messageNode({ author: 'agent', agent: me.agent, text: p.text, client_id: p.clientId }, true);
  if (p.failed) markFailed(p, node, p.error);
  p.node = node;
  $('messages').appendChild(node);
  scrollToEnd(true);
}

function markFailed(p, node, detail) {
  node.classList.add('is-failed');
  node.classList.remove('is-pending');
  var time = node.querySelector('.msg-time');
  if (time) time.textContent = t('msg.notSent');
  if (!node.querySelector('.msg-retry')) {
    var retry = h('button', { className: 'msg-retry', text: t('msg.retry'), attrs: { type: 'button', title: detail || '' } });
    retry.addEventListener('click', function () {
      p.failed = false;
      node.classList.remove('is-failed');
      node.classList.add('is-pending');
      if (time) time.textContent = t('msg.sending');
      retry.remove();
      deliver(p);
    });
    node.appendChild(retry);
  }
}

export function confirmPending(msg) {
  if (!msg.client_id || !state.pending.has(msg.client_id)) return;
  var p = state.pending.get(msg.client_id);
  clearTimeout(p.timer);
  state.pending.delete(msg.client_id);
  if (p.node) p.node.remove();
}

function submit() {
  if (state.mode === 'note') return saveNote();
  var o = state.open;
  var input = $('reply-input');
  if (!o || !canReply(o.conv)) return;
  var text = input.value.trim();
  if (!text) return;
  input.value = '';
  autosize();
  state.drafts.delete(state.openId);
  stopAgentTyping();
  var p = { convId: state.openId, clientId: newClientId(), text: text, node: null, timer: null, failed: false };
  state.pending.set(p.clientId, p);
  placePending(p);
  deliver(p);
  input.focus();
}

function deliver(p) {
  clearTimeout(p.timer);
  var sent = send({ t: 'message', conversation_id: p.convId, client_id: p.clientId, text: p.text });
  if (sent) p.timer = setTimeout(function () { postPending(p); }, ECHO_TIMEOUT_MS);
  else postPending(p);
}

export function postPending(p) {
  clearTimeout(p.timer);
  p.timer = null;
  if (!state.pending.has(p.clientId)) return;
  api('POST', convPath(p.convId, '/messages'), { client_id: p.clientId, text: p.text }).then(function (data) {
    if (data && data.message) onMessage(data.message, p.convId);
  }).catch(function (e) {
    if (e.status === 401 || !state.pending.has(p.clientId)) return;
    p.failed = true;
    p.error = e.detail || e.message;
    if (p.node) markFailed(p, p.node, p.error);
    banner(t('msg.failed', { error: p.error }));
  });
}

export function autosize() {
  var input = $('reply-input');
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight + 2, 180) + 'px';
}

function saveNote() {
  var id = state.openId;
  var input = $('reply-input');
  var text = input.value.trim();
  if (!id || !text) return;
  var button = $('reply-send');
  button.disabled = true;
  api('POST', convPath(id, '/notes'), { text: text }).then(function (data) {
    if (state.mode === 'note' && state.openId === id) {
      input.value = '';
      autosize();
      state.drafts.delete(id);
    }
    if (data && data.note && state.openId === id) addNote(data.note);
  }).catch(function (e) {
    if (e.status !== 401) banner(t('note.failed', { error: e.message }));
  }).then(function () {
    renderOpen();
    input.focus();
  });
}

export function setMode(mode) {
  if (state.mode !== mode) stopAgentTyping();
  state.mode = mode === 'note' ? 'note' : 'reply';
  var note = state.mode === 'note';
  $('mode-reply').setAttribute('aria-selected', note ? 'false' : 'true');
  $('mode-note').setAttribute('aria-selected', note ? 'true' : 'false');
  $('composer').classList.toggle('is-note', note);
  var input = $('reply-input');
  input.setAttribute('data-i18n-placeholder', note ? 'composer.notePlaceholder' : 'composer.placeholder');
  input.setAttribute('placeholder', t(note ? 'composer.notePlaceholder' : 'composer.placeholder'));
  var button = $('reply-send');
  button.setAttribute('data-i18n', note ? 'composer.addNote' : 'composer.send');
  button.textContent = t(note ? 'composer.addNote' : 'composer.send');
  if (me.agent) renderOpen();
  emit('composer:mode', state.mode);
}

var agentTyping = { on: false, convId: null, sentAt: 0, idle: null };

function onReplyInput() {
  autosize();
  var o = state.open;
  if (state.mode === 'note') return;  // the visitor must not even see "typing" for a note
  if (!o || !canReply(o.conv)) return;
  if (!$('reply-input').value.trim()) {
    stopAgentTyping();
    return;
  }
  var now = Date.now();
  if (!agentTyping.on || agentTyping.convId !== state.openId || now - agentTyping.sentAt > TYPING_RESEND_MS) {
    if (agentTyping.on && agentTyping.convId !== state.openId) stopAgentTyping();
    if (send({ t: 'typing', conversation_id: state.openId, on: true })) {
      agentTyping.on = true;
      agentTyping.convId = state.openId;
      agentTyping.sentAt = now;
    }
  }
  clearTimeout(agentTyping.idle);
  agentTyping.idle = setTimeout(stopAgentTyping, TYPING_IDLE_MS);
}

export function stopAgentTyping() {
  clearTimeout(agentTyping.idle);
  agentTyping.idle = null;
  if (agentTyping.on) send({ t: 'typing', conversation_id: agentTyping.convId, on: false });
  agentTyping.on = false;
  agentTyping.convId = null;
}


// Puts text in the composer for the agent to edit before sending (canned replies).
export function insertText(text) {
  var input = $('reply-input');
  input.value = text;
  input.focus();
  input.setSelectionRange(text.length, text.length);
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

// Logged out: the visitor must not go on seeing "typing".
export function resetComposer() { stopAgentTyping(); }

$('mode-reply').addEventListener('click', function () { setMode('reply'); $('reply-input').focus(); });
$('mode-note').addEventListener('click', function () { setMode('note'); $('reply-input').focus(); });
$('composer').addEventListener('submit', function (ev) {
  ev.preventDefault();
  submit();
});
var input = $('reply-input');
input.addEventListener('keydown', function (ev) {
  // isComposing: Enter that confirms an IME candidate must not send.
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
    ev.preventDefault();
    submit();
    return;
  }
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    submit();
  }
});
input.addEventListener('input', onReplyInput);
input.addEventListener('blur', function () {
  if (state.openId) state.drafts.set(state.openId, input.value);
});
