/* The Leads admin view (site admins only: the tab is registered for admins, and the leads
 * service refuses an agent's session with 403 `admin_only` anyway). One section at a time,
 * each its own module (admin-<section>.js) exporting `build(root)`:
 *
 *   rules     the routing rules, the "which team would get this lead" tester, SLA policies
 *   agents    each agent's open-lead cap, teams (chat's membership) and taking leads or not
 *   teams     the leads teams: name and team lead (SLA escalations)
 *   hours     the site's timezone, weekly business hours and holidays (SLA clocks)
 *   webhooks  CRM endpoints: secret shown once, rotation, test send, delivery log, replay
 */
import { clear, h } from '../core/dom.js';
import { on } from '../core/events.js';
import { isAdmin } from '../core/me.js';
import { views } from '../core/views.js';
import { leadsEnabled } from './api.js';
import * as agents from './admin-agents.js';
import * as hours from './admin-hours.js';
import * as rules from './admin-rules.js';
import * as teams from './admin-teams.js';
import * as webhooks from './admin-webhooks.js';

var SECTIONS = {
  rules: { label: 'leadAdmin.tab.rules', module: rules },
  agents: { label: 'leadAdmin.tab.agents', module: agents },
  teams: { label: 'leadAdmin.tab.teams', module: teams },
  hours: { label: 'leadAdmin.tab.hours', module: hours },
  webhooks: { label: 'leadAdmin.tab.webhooks', module: webhooks },
};
var current = 'rules';

function build() {
  var root = views.container('leadadmin');
  clear(root);
  var body = h('div', { className: 'ladm-body', testid: 'ladm-body', data: { section: current } });
  var tabs = h('div', { className: 'ladm-tabs', attrs: { role: 'tablist' } }, Object.keys(SECTIONS).map(function (name) {
    return h('button', {
      className: 'view-tab', testid: 'ladm-tab-' + name, i18n: SECTIONS[name].label,
      attrs: { type: 'button', role: 'tab', 'aria-selected': name === current ? 'true' : 'false' },
      on: { click: function () {
        if (name !== current) webhooks.forget();  // a secret is shown once: not again later
        current = name;
        build();
      } },
    });
  }));
  root.appendChild(h('div', { className: 'ladm-view' }, [h('h2', { className: 'leads-title', i18n: 'leadAdmin.title' }), tabs, body]));
  SECTIONS[current].module.build(body);
}

on('ready', function () {
  if (!leadsEnabled() || !isAdmin() || views.list.some(function (v) { return v.name === 'leadadmin'; })) return;
  views.register('leadadmin', { label: 'nav.leadAdmin', adminOnly: true, onShow: build, onHide: webhooks.forget });
});
on('locale', function () { if (views.current === 'leadadmin') build(); });
on('reset', function () { current = 'rules'; webhooks.forget(); });
