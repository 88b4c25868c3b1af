/* The console's views (tabs): chats (always), then each feature's view in the order the
 * features register. A view's container is <section id="view-NAME"> in index.html. */
import { $, clear, h } from './dom.js';
import { emit } from './events.js';
import { isAdmin, me } from './me.js';

export const views = {
  list: [],         // [{name, label, adminOnly}]
  current: 'chats',
  // spec: {label: i18n key, adminOnly: bool, onShow(), onHide()}
  register: function (name, spec) {
    spec = spec || {};
    views.list.push({ name: name, label: spec.label || ('nav.' + name), adminOnly: !!spec.adminOnly, spec: spec });
    if (me.agent) views.renderTabs();
  },
  container: function (name) { return $('view-' + name); },
  renderTabs: function () {
    var nav = $('view-tabs');
    if (!nav) return;
    clear(nav);
    var admin = isAdmin();
    [{ name: 'chats', label: 'nav.chats' }].concat(views.list).forEach(function (v) {
      if (v.adminOnly && !admin) return;
      var tab = h('button', {
        className: 'view-tab',
        testid: 'tab-' + v.name,
        i18n: v.label,
        attrs: { type: 'button', role: 'tab', 'aria-selected': v.name === views.current ? 'true' : 'false' },
        on: { click: function () { views.show(v.name); } },
      });
      nav.appendChild(tab);
    });
  },
  show: function (name) {
    var previous = views.current;
    if (previous === name) return;
    var entry = views.list.find(function (v) { return v.name === previous; });
    if (entry && entry.spec.onHide) entry.spec.onHide();
    document.querySelectorAll('#app .view').forEach(function (n) { n.hidden = n.getAttribute('data-view') !== name; });
    views.current = name;
    views.renderTabs();
    entry = views.list.find(function (v) { return v.name === name; });
    if (entry && entry.spec.onShow) entry.spec.onShow();
    emit('view', name);
  },
};
