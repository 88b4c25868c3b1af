/* The Offline messages view (every agent; the notifier's GET /v1/email/offline): what visitors
 * left while nobody was online, newest first — who, their e-mail, the message, when, and
 * whether an agent has answered. Opening one opens its conversation in the chats view, where
 * any agent answers it; the notifier mails the answer to the visitor (and their reply by
 * e-mail comes back into the same conversation).
 *
 * Asked again every POLL_MS while the view is shown and the page visible, and at once when
 * the window gets the focus back.
 */
import { showConversation } from '../chats/conversation.js';
import { clear, h } from '../core/dom.js';
import { on } from '../core/events.js';
import { fmt } from '../core/format.js';
import { t } from '../core/i18n.js';
import { teamName } from '../core/me.js';
import { views } from '../core/views.js';
import { notifierApi, notifierEnabled, notifierError } from './api.js';

export var POLL_MS = 10000;
var TEXT_CHARS = 160;

var state = fresh();
function fresh() { return { messages: [], error: null, loaded: false, poll: null, seq: 0, filter: 'all' }; }
var els = {};

function load() {
  if (!notifierEnabled() || views.current !== 'offline') return Promise.resolve();
  var seq = ++state.seq;
  return notifierApi('GET', '/email/offline?limit=200').then(function (page) {
    if (seq !== state.seq) return;
    state.messages = (page && page.messages) || [];
    state.error = null;
    state.loaded = true;
    render();
  }, function (err) {
    if (seq !== state.seq) return;
    state.error = notifierError(err);
    state.loaded = true;
    render();
  });
}

function build() {
  var root = views.container('offline');
  clear(root);
  var filter = h('select', { testid: 'offline-filter', on: { change: function () { state.filter = filter.value; render(); } } }, [
    h('option', { attrs: { value: 'all' }, i18n: 'offline.filter.all' }),
    h('option', { attrs: { value: 'waiting' }, i18n: 'offline.filter.waiting' }),
    h('option', { attrs: { value: 'answered' }, i18n: 'offline.filter.answered' }),
  ]);
  filter.value = state.filter;
  els.error = h('p', { className: 'form-error', testid: 'offline-error', attrs: { role: 'alert', hidden: true } });
  els.list = h('div', { className: 'email-list-wrap' });
  root.appendChild(h('div', { className: 'email-view' }, [
    h('div', { className: 'email-bar' }, [
      h('h2', { className: 'email-title', i18n: 'offline.title' }),
      h('label', { className: 'field email-field' }, [h('span', { i18n: 'offline.filter' }), filter]),
      h('button', { className: 'btn btn-small', testid: 'offline-refresh', i18n: 'email.refresh', attrs: { type: 'button' }, on: { click: load } }),
      h('span', { className: 'email-hint', i18n: 'offline.hint' }),
    ]),
    els.error,
    els.list,
  ]));
}

function who(m) { return m.visitor_name || m.email || t('offline.anonymous'); }

function shortText(text) {
  text = String(text || '').replace(/\s+/g, ' ').trim();
  return text.length > TEXT_CHARS ? text.slice(0, TEXT_CHARS - 1) + '…' : text;
}

function render() {
  if (!els.list) return;
  els.error.textContent = state.error || '';
  els.error.hidden = !state.error;
  clear(els.list);
  if (!state.loaded) { els.list.appendChild(h('p', { className: 'list-empty', i18n: 'common.loading' })); return; }
  var shown = state.messages.filter(function (m) {
    return state.filter === 'all' || (state.filter === 'answered') === !!m.answered;
  });
  if (!shown.length) {
    if (!state.error) els.list.appendChild(h('p', { className: 'list-empty', testid: 'offline-empty', i18n: 'offline.empty' }));
    return;
  }
  var head = h('tr', {}, ['offline.col.who', 'offline.col.email', 'offline.col.text', 'offline.col.team', 'offline.col.when', 'offline.col.state'].map(function (key) {
    return h('th', { i18n: key, attrs: { scope: 'col' } });
  }));
  var rows = shown.map(function (m) {
    function open() { showConversation(m.conversation_id); }
    return h('tr', {
      className: 'email-row offline-row',
      testid: 'offline-row',
      data: { conversation: m.conversation_id, answered: m.answered ? 'true' : 'false' },
      attrs: { tabindex: 0, title: t('offline.open') },
      on: { click: open, keydown: function (e) { if (e.key === 'Enter') open(); } },
    }, [
      h('td', { className: 'offline-who', text: who(m) }),
      h('td', { className: 'offline-email', text: m.email || '' }),
      h('td', { className: 'offline-text', testid: 'offline-text', text: shortText(m.text), attrs: { title: m.text || '' } }),
      h('td', { text: m.team ? teamName(m.team) : '' }),
      h('td', {}, [h('time', { text: fmt.dateTime(m.left_at), attrs: { datetime: m.left_at } })]),
      h('td', {}, [h('span', {
        className: 'badge offline-state', testid: 'offline-state', data: { answered: m.answered ? 'true' : 'false' },
        i18n: m.answered ? 'offline.answered' : 'offline.waiting',
      })]),
    ]);
  });
  els.list.appendChild(h('table', { className: 'email-table', testid: 'offline-list' }, [h('thead', {}, [head]), h('tbody', {}, rows)]));
}

function startPolling() {
  stopPolling();
  state.poll = setInterval(function () { if (!document.hidden) load(); }, POLL_MS);
}

function stopPolling() {
  clearInterval(state.poll);
  state.poll = null;
}

function focused() { if (views.current === 'offline') load(); }

on('ready', function () {
  if (!notifierEnabled() || views.list.some(function (v) { return v.name === 'offline'; })) return;
  views.register('offline', {
    label: 'nav.offline',
    onShow: function () { build(); render(); load(); startPolling(); },
    onHide: stopPolling,
  });
});
window.addEventListener('focus', focused);
document.addEventListener('visibilitychange', function () { if (!document.hidden) focused(); });
on('locale', function () { if (views.current === 'offline') { build(); render(); } });
on('reset', function () { stopPolling(); state = fresh(); els = {}; });
