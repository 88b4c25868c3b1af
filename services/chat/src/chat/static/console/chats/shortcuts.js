/* Keyboard shortcuts of the chats view (Alt+↑/↓, Alt+1…9, Alt+N, Alt+R, Esc, ?) and their
 * help overlay. Esc first closes the help, else it is announced ('escape') for popups. */
import { $, h, show } from '../core/dom.js';
import { emit } from '../core/events.js';
import { t } from '../core/i18n.js';
import { me } from '../core/me.js';
import { views } from '../core/views.js';
import { setMode } from './composer.js';
import { openConversation } from './conversation.js';
import { mineOrder } from './lists.js';
import { state } from './state.js';

// Alt+↓ / Alt+↑: the next / previous of my conversations (then the waiting ones).
function step(delta) {
  var ids = mineOrder().concat(Array.prototype.map.call($('queue-list').children, function (li) {
    return li.getAttribute('data-conversation-id');
  }));
  if (!ids.length) return;
  var at = ids.indexOf(state.openId);
  var next = at < 0 ? (delta > 0 ? 0 : ids.length - 1) : (at + delta + ids.length) % ids.length;
  openConversation(ids[next]);
}

var SHORTCUTS = [
  ['Alt+↓', 'shortcuts.next'],
  ['Alt+↑', 'shortcuts.prev'],
  ['Alt+1…9', 'shortcuts.nth'],
  ['Ctrl+Enter', 'shortcuts.send'],
  ['/', 'shortcuts.canned'],
  ['Alt+N', 'shortcuts.note'],
  ['Alt+R', 'shortcuts.focus'],
  ['Esc', 'shortcuts.escape'],
  ['?', 'shortcuts.help'],
];

export function showShortcuts(visible) {
  var box = $('shortcuts-help');
  if (!box) return;
  if (visible) {
    var list = $('shortcuts-list');
    list.textContent = '';
    SHORTCUTS.forEach(function (s) {
      list.appendChild(h('dt', {}, [h('kbd', { text: s[0] })]));
      list.appendChild(h('dd', { text: t(s[1]), attrs: { 'data-i18n': s[1] } }));
    });
  }
  show(box, !!visible);
  if (visible) $('shortcuts-close').focus();
}

function typingTarget(el) {
  return !!el && (el.tagName === 'TEXTAREA' || el.tagName === 'INPUT' || el.tagName === 'SELECT' || el.isContentEditable);
}

function onGlobalKey(ev) {
  if (!me.agent || ev.defaultPrevented) return;
  if (ev.key === 'Escape') {
    if (!$('shortcuts-help').hidden) { ev.preventDefault(); showShortcuts(false); return; }
    emit('escape', ev);  // features close their popups
    return;
  }
  if (ev.altKey && !ev.ctrlKey && !ev.metaKey) {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (views.current !== 'chats') views.show('chats');
      step(ev.key === 'ArrowDown' ? 1 : -1);
      return;
    }
    var digit = /^Digit([1-9])$/.exec(ev.code || '');
    if (digit) {
      var ids = mineOrder();
      var wanted = ids[Number(digit[1]) - 1];
      ev.preventDefault();
      if (views.current !== 'chats') views.show('chats');
      if (wanted) openConversation(wanted);
      return;
    }
    if (ev.code === 'KeyN' && state.open) {
      ev.preventDefault();
      setMode(state.mode === 'note' ? 'reply' : 'note');
      $('reply-input').focus();
      return;
    }
    if (ev.code === 'KeyR' && state.open) {
      ev.preventDefault();
      $('reply-input').focus();
      return;
    }
  }
  if (ev.key === '?' && !typingTarget(ev.target) && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
    ev.preventDefault();
    showShortcuts(true);
  }
}


$('shortcuts-open').addEventListener('click', function () { showShortcuts(true); });
$('shortcuts-close').addEventListener('click', function () { showShortcuts(false); });
$('shortcuts-help').addEventListener('click', function (ev) { if (ev.target === $('shortcuts-help')) showShortcuts(false); });
document.addEventListener('keydown', onGlobalKey);
