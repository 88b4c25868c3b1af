/* The E-mail admin view (site admins only: the tab is registered for admins, and the notifier
 * refuses an agent's session with 403 `admin_only` anyway). One section at a time, each its
 * own module exporting `build(root)`:
 *
 *   log        the delivery log: sent, retried, failed, suppressed (bounced, complained,
 *              unsubscribed); each e-mail's tries; resend
 *   settings   the site's e-mail settings: from name and address, reply domain, team inboxes
 *   templates  a preview of each template in English and Finnish
 */
import { clear, h } from '../core/dom.js';
import { on } from '../core/events.js';
import { isAdmin } from '../core/me.js';
import { views } from '../core/views.js';
import { notifierEnabled } from './api.js';
import * as log from './log.js';
import * as settings from './settings.js';
import * as templates from './templates.js';

var SECTIONS = {
  log: { label: 'emailAdmin.tab.log', module: log },
  settings: { label: 'emailAdmin.tab.settings', module: settings },
  templates: { label: 'emailAdmin.tab.templates', module: templates },
};
var current = 'log';

export function showSection(name) {
  if (SECTIONS[name]) current = name;
  if (views.current === 'emailadmin') build();
  else views.show('emailadmin');
}

function build() {
  var root = views.container('emailadmin');
  clear(root);
  var body = h('div', { className: 'email-admin-body', testid: 'email-admin-body', data: { section: current } });
  var tabs = h('div', { className: 'email-tabs', attrs: { role: 'tablist' } }, Object.keys(SECTIONS).map(function (name) {
    return h('button', {
      className: 'view-tab', testid: 'email-tab-' + name, i18n: SECTIONS[name].label,
      attrs: { type: 'button', role: 'tab', 'aria-selected': name === current ? 'true' : 'false' },
      on: { click: function () { current = name; build(); } },
    });
  }));
  root.appendChild(h('div', { className: 'email-view' }, [h('h2', { className: 'email-title', i18n: 'emailAdmin.title' }), tabs, body]));
  SECTIONS[current].module.build(body);
}

on('ready', function () {
  if (!notifierEnabled() || !isAdmin() || views.list.some(function (v) { return v.name === 'emailadmin'; })) return;
  views.register('emailadmin', { label: 'nav.emailAdmin', adminOnly: true, onShow: build });
});
on('locale', function () { if (views.current === 'emailadmin') build(); });
on('reset', function () { current = 'log'; });
