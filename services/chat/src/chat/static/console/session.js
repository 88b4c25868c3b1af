/* The agent's session: the login form, start (GET /me, then the socket), logout, and a
 * session that ends under us (a 401 anywhere: 'session:lost'). Also what the chats view does
 * when the socket (re)connects, when the agent changes, and in a new language. */
import { api } from './core/api.js';
import { $, show } from './core/dom.js';
import { emit, on } from './core/events.js';
import { i18n, t } from './core/i18n.js';
import { forgetMe, me, setMe } from './core/me.js';
import { views } from './core/views.js';
import { postPending, resetComposer, setMode } from './chats/composer.js';
import { loadOpen, relabelTimeline, renderOpen, resetConversation } from './chats/conversation.js';
import { loadSeen, pickupError, refreshLists, renderLists, resetLists } from './chats/lists.js';
import { showShortcuts } from './chats/shortcuts.js';
import { idOf, resetState, state } from './chats/state.js';
import { socket } from './socket.js';
import { renderHeader } from './topbar.js';

function showLogin(errorText) {
  show($('booting'), false);
  show($('app'), false);
  show($('login-view'), true);
  var err = $('login-error');
  err.textContent = errorText || '';
  show(err, !!errorText);
  // never take the focus from a field someone is typing in: the set-password page of an
  // invited agent lies over this form, and its keystrokes would land in the e-mail field
  var active = document.activeElement;
  if (!active || active === document.body) $('login-email').focus();
}

function start() {
  return api('GET', '/me').then(function (answer) {
    setMe(answer);
    loadSeen();
    show($('booting'), false);
    show($('login-view'), false);
    show($('app'), true);
    renderHeader();
    renderLists();
    renderOpen();
    refreshLists();
    socket.start();
    i18n.set((answer.agent && answer.agent.locale) || 'en');
    views.renderTabs();
    emit('ready', answer);
  });
}

// Forget everything that belongs to the agent who was logged in.
function reset() {
  forgetMe();
  views.show('chats');
  emit('reset');
  socket.stop();
  resetComposer();
  resetConversation();
  state.pending.forEach(function (p) { clearTimeout(p.timer); });
  resetState();
  resetLists();
  $('messages').textContent = '';
  $('reply-input').value = '';
  setMode('reply');
  showShortcuts(false);
  document.title = t('title');
}

function sessionLost() {
  if (!me.agent) return;
  reset();
  showLogin(t('login.ended'));
}

function onLoginSubmit(ev) {
  ev.preventDefault();
  var email = $('login-email').value.trim();
  var password = $('login-password').value;
  var err = $('login-error');
  show(err, false);
  if (!email || !password) {
    err.textContent = t('login.missing');
    show(err, true);
    return;
  }
  var button = $('login-submit');
  button.disabled = true;
  api('POST', '/login', { email: email, password: password }, { login: true })
    .then(function () {
      $('login-password').value = '';
      return start();
    })
    .catch(function (e) {
      err.textContent = e.detail || (e.status === 401 ? t('login.wrong') : e.message);
      show(err, true);
    })
    .then(function () { button.disabled = false; });
}

function logout() {
  api('POST', '/logout').catch(function () { /* the cookie is gone either way for us */ })
    .then(function () {
      reset();
      showLogin('');
    });
}

function rerender() {
  if (!me.agent) return;
  relabelTimeline();
  renderHeader();
  renderLists();
  renderOpen();
}

// The console starts here (main.js): the session cookie may still be valid.
export function boot() {
  start().catch(function (e) {
    if (e.status === 401) showLogin('');
    else showLogin(e.status === 0 ? t('login.unreachable') : e.message);
  });
}

on('session:lost', sessionLost);
on('locale', rerender);
$('login-form').addEventListener('submit', onLoginSubmit);
$('logout').addEventListener('click', logout);

// the agent as the server knows them, on every (re)connect
on('frame:hello', function (f) {
  if (f.agent) {
    me.agent = f.agent;
    renderHeader();
  }
});

// Whatever happened while the socket was down is fetched again; merging is idempotent.
on('connected', function () {
  refreshLists();
  if (state.openId) loadOpen();
  // Messages sent into the void are delivered over HTTP (client_id makes it safe).
  state.pending.forEach(function (p) { if (!p.failed) postPending(p); });
});

// the agent changed (status, load, settings): possibly on another device
on('frame:agent', function (f) {
  if (f.agent && idOf(f.agent.id) === idOf(me.agent.id)) {
    me.agent = f.agent;
    emit('agent', f.agent);
    // "At your limit" is no longer true once a chat has been closed.
    if (f.agent.open_chats < f.agent.max_chats) pickupError('');
    renderHeader();
    renderLists();
    renderOpen();
  }
});
