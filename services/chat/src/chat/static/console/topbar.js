/* The top bar: the agent and their site, the online/away toggle, the chat load and the
 * language (saved with the agent). */
import { api } from './core/api.js';
import { $, banner } from './core/dom.js';
import { emit, on } from './core/events.js';
import { i18n, t } from './core/i18n.js';
import { me } from './core/me.js';

export function renderHeader() {
  var a = me.agent;
  if (!a) return;
  $('agent-name').textContent = a.name || a.email || '';
  var site = me.site || {};
  $('site-name').textContent = site.name || site.site_id || a.site_id || '';
  var status = a.status || 'away';
  var toggle = $('status-toggle');
  toggle.setAttribute('data-status', status);
  toggle.textContent = t('status.' + (status === 'online' || status === 'away' ? status : 'offline'));
  toggle.title = status === 'online' ? t('status.onlineTitle') : t('status.awayTitle');
  toggle.setAttribute('aria-pressed', status === 'online' ? 'true' : 'false');
  $('agent-load').textContent = (a.open_chats != null ? a.open_chats : 0) + '/' + (a.max_chats != null ? a.max_chats : '–');
}

function toggleStatus() {
  if (!me.agent) return;
  var next = me.agent.status === 'online' ? 'away' : 'online';
  var toggle = $('status-toggle');
  toggle.disabled = true;
  api('POST', '/status', { status: next }).then(function (data) {
    if (data && data.agent) me.agent = data.agent;
    renderHeader();
  }).catch(function (e) {
    if (e.status !== 401) banner(t('status.failed', { error: e.message }));
  }).then(function () { toggle.disabled = false; });
}

function setLocale(ev) {
  var locale = ev.target.value;
  i18n.set(locale);
  api('POST', '/me/preferences', { locale: locale }).then(function (data) {
    if (data && data.agent) { me.agent = data.agent; emit('agent', data.agent); }
  }).catch(function (e) { banner(e.message); });
}


$('status-toggle').addEventListener('click', toggleStatus);
$('locale-select').addEventListener('change', setLocale);
on('locale', function (locale) { $('locale-select').value = locale; });
