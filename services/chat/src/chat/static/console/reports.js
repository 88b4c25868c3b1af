/* Beckon console feature: reports — per agent, per team, per rule (funnel and hold-out
 * uplift), and the share of orders and revenue assisted by chat; CSV export per table.
 *
 * Data: GET /v1/console/reports/{agents,teams,rules,assisted}[.csv]?from=&to= (UTC days).
 * Admins see every tab; a plain agent sees their own agents' row and the assisted share.
 * Charts are inline SVG built with createElementNS; styling comes from reports.css classes
 * (CSP: no inline styles). Numbers, money, percentages and durations in the agent's locale.
 */
import { api, API } from './core/api.js';
import { clear, h, show } from './core/dom.js';
import { on } from './core/events.js';
import { fmt } from './core/format.js';
import { t } from './core/i18n.js';
import { me } from './core/me.js';
import { views } from './core/views.js';

var SVG = 'http://www.w3.org/2000/svg';

var TABS = [
  { name: 'agents', label: 'reports.tab.agents', adminOnly: false },
  { name: 'teams', label: 'reports.tab.teams', adminOnly: true },
  { name: 'rules', label: 'reports.tab.rules', adminOnly: true },
  { name: 'assisted', label: 'reports.tab.assisted', adminOnly: false },
];
var FUNNEL = ['eligible', 'invited', 'held_out', 'shown', 'accepted', 'conversations', 'orders_invited', 'orders_held_out'];

var state = {
  built: false,
  tab: 'agents',
  preset: '7',
  from: null,
  to: null,
  data: {},       // tab -> last answer
  errors: {},     // tab -> message
  seq: 0,
};
var els = {};

// ---------------------------------------------------------------- period

function isoDay(d) { return d.toISOString().slice(0, 10); }

function presetPeriod(days) {
  var today = new Date();
  var from = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - (days - 1)));
  return { from: isoDay(from), to: isoDay(today) };
}

function period() {
  if (state.preset === 'custom') return { from: state.from, to: state.to };
  return presetPeriod(Number(state.preset));
}

function query() {
  var p = period();
  var parts = [];
  if (p.from) parts.push('from=' + encodeURIComponent(p.from));
  if (p.to) parts.push('to=' + encodeURIComponent(p.to));
  return parts.length ? '?' + parts.join('&') : '';
}

function isAdmin() { return !!(me.agent && me.agent.role === 'admin'); }

// ---------------------------------------------------------------- SVG

function svg(tag, attrs, children) {
  var node = document.createElementNS(SVG, tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (attrs[k] != null) node.setAttribute(k, String(attrs[k]));
  });
  (children || []).forEach(function (c) {
    if (c == null) return;
    node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  });
  return node;
}

// Horizontal bars: items [{label, value, text, cls}] -> <svg>. Lengths relative to the max.
function barChart(items, opts) {
  opts = opts || {};
  var rowH = 26;
  var labelW = 170;
  var width = 640;
  var barW = width - labelW - 110;
  var height = Math.max(1, items.length) * rowH + 8;
  var max = items.reduce(function (m, it) { return Math.max(m, Number(it.value) || 0); }, 0);
  var root = svg('svg', {
    viewBox: '0 0 ' + width + ' ' + height,
    class: 'rpt-chart ' + (opts.className || ''),
    role: 'img',
    'aria-label': opts.title || '',
    'data-testid': opts.testid,
    preserveAspectRatio: 'xMinYMin meet',
  });
  if (opts.title) root.appendChild(svg('title', {}, [opts.title]));
  items.forEach(function (it, i) {
    var y = 4 + i * rowH;
    var value = Number(it.value) || 0;
    var len = max > 0 ? Math.max(value > 0 ? 2 : 0, Math.round(barW * value / max)) : 0;
    var g = svg('g', { class: 'rpt-bar-row', 'data-label': it.key || it.label });
    g.appendChild(svg('text', { x: labelW - 8, y: y + rowH / 2 + 4, class: 'rpt-label', 'text-anchor': 'end' }, [truncate(it.label, 24)]));
    g.appendChild(svg('rect', { x: labelW, y: y + 4, width: barW, height: rowH - 8, rx: 3, class: 'rpt-track' }));
    g.appendChild(svg('rect', { x: labelW, y: y + 4, width: len, height: rowH - 8, rx: 3, class: 'rpt-bar ' + (it.cls || '') }));
    g.appendChild(svg('text', { x: labelW + len + 6, y: y + rowH / 2 + 4, class: 'rpt-value' }, [it.text != null ? it.text : fmt.number(value)]));
    root.appendChild(g);
  });
  return root;
}

// A ring showing `ratio` (0..1) with the percentage in the middle.
function donut(ratio, testid, title) {
  var r = 40;
  var c = 2 * Math.PI * r;
  var part = ratio == null ? 0 : Math.max(0, Math.min(1, Number(ratio)));
  var root = svg('svg', { viewBox: '0 0 120 120', class: 'rpt-donut', role: 'img', 'aria-label': title, 'data-testid': testid });
  root.appendChild(svg('title', {}, [title]));
  root.appendChild(svg('circle', { cx: 60, cy: 60, r: r, class: 'rpt-donut-track' }));
  root.appendChild(svg('circle', {
    cx: 60, cy: 60, r: r, class: 'rpt-donut-part',
    'stroke-dasharray': (c * part).toFixed(2) + ' ' + c.toFixed(2),
    transform: 'rotate(-90 60 60)',
  }));
  root.appendChild(svg('text', { x: 60, y: 66, 'text-anchor': 'middle', class: 'rpt-donut-text' }, [fmt.percent(ratio)]));
  return root;
}

function truncate(text, n) {
  text = String(text == null ? '' : text);
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}

// ---------------------------------------------------------------- tables

function table(testid, columns, rows, rowProps) {
  var head = h('tr', {}, columns.map(function (c) {
    return h('th', { i18n: c.label, className: c.num ? 'num' : '', attrs: { scope: 'col' } });
  }));
  var body = rows.map(function (row) {
    var props = rowProps ? rowProps(row) : {};
    return h('tr', props, columns.map(function (c) {
      return h('td', { className: c.num ? 'num' : '', text: c.value(row), data: { col: c.key } });
    }));
  });
  return h('div', { className: 'rpt-table-wrap' }, [
    h('table', { className: 'rpt-table', testid: testid }, [h('thead', {}, [head]), h('tbody', {}, body)]),
  ]);
}

function revenueText(revenue) {
  var keys = Object.keys(revenue || {}).sort();
  if (!keys.length) return fmt.money(0, 'EUR');
  return keys.map(function (cur) { return fmt.money(revenue[cur], cur === 'XXX' ? undefined : cur); }).join(', ');
}

function loadText(row) {
  return fmt.number(row.load_busy_mean, 2);
}

function groupColumns(kind) {
  var first = kind === 'agents'
    ? [{ key: 'agent', label: 'reports.col.agent', value: function (r) { return r.name; } }]
    : [
      { key: 'team', label: 'reports.col.team', value: function (r) { return r.name; } },
      { key: 'members', label: 'reports.col.members', num: true, value: function (r) { return fmt.number(r.members); } },
    ];
  return first.concat([
    { key: 'conversations', label: 'reports.col.conversations', num: true, value: function (r) { return fmt.number(r.conversations); } },
    { key: 'unanswered', label: 'reports.col.unanswered', num: true, value: function (r) { return fmt.number(r.unanswered); } },
    { key: 'frt_median', label: 'reports.col.frt_median', num: true, value: function (r) { return fmt.duration(r.first_response_median_s); } },
    { key: 'frt_mean', label: 'reports.col.frt_mean', num: true, value: function (r) { return fmt.duration(r.first_response_mean_s); } },
    { key: 'response_mean', label: 'reports.col.response_mean', num: true, value: function (r) { return fmt.duration(r.response_mean_s); } },
    { key: 'load_mean', label: 'reports.col.load_mean', num: true, value: loadText },
    { key: 'load_max', label: 'reports.col.load_max', num: true, value: function (r) { return fmt.number(r.load_max); } },
    { key: 'orders', label: 'reports.col.orders', num: true, value: function (r) { return fmt.number(r.orders); } },
    { key: 'revenue', label: 'reports.col.revenue', num: true, value: function (r) { return revenueText(r.revenue); } },
  ]);
}

// ---------------------------------------------------------------- sections

function csvLink(kind) {
  return h('a', {
    className: 'btn btn-small rpt-csv',
    testid: 'csv-' + kind,
    i18n: 'reports.csv',
    attrs: { href: API + '/reports/' + kind + '.csv' + query(), download: '' },
  });
}

function notes(answer) {
  var out = [];
  if (answer && answer.attribution_window_days) {
    out.push(h('p', { className: 'rpt-note', text: t('reports.window', { days: answer.attribution_window_days }) }));
  }
  if (answer && answer.truncated) out.push(h('p', { className: 'rpt-warning', i18n: 'reports.truncated' }));
  return out;
}

function renderAgents(box, answer) {
  var rows = answer.agents || [];
  box.appendChild(h('div', { className: 'rpt-toolbar' }, [csvLink('agents')]));
  notes(answer).forEach(function (n) { box.appendChild(n); });
  if (!rows.length) { box.appendChild(h('p', { className: 'rpt-empty', i18n: 'reports.empty' })); return; }
  var charts = h('div', { className: 'rpt-charts' }, [
    h('figure', { className: 'rpt-figure' }, [
      h('figcaption', { i18n: 'reports.chart.conversations' }),
      barChart(rows.map(function (r) { return { key: r.agent, label: r.name, value: r.conversations }; }),
        { testid: 'agents-chart', title: t('reports.chart.conversations') }),
    ]),
    h('figure', { className: 'rpt-figure' }, [
      h('figcaption', { i18n: 'reports.chart.frt' }),
      barChart(rows.map(function (r) {
        return { key: r.agent, label: r.name, value: r.first_response_median_s || 0, text: fmt.duration(r.first_response_median_s), cls: 'rpt-bar-time' };
      }), { testid: 'agents-frt-chart', title: t('reports.chart.frt') }),
    ]),
  ]);
  box.appendChild(charts);
  box.appendChild(table('report-agents-table', groupColumns('agents'), rows, function (r) {
    return { testid: 'report-agent-row', data: { agent: r.agent } };
  }));
}

function renderTeams(box, answer) {
  var rows = answer.teams || [];
  box.appendChild(h('div', { className: 'rpt-toolbar' }, [csvLink('teams')]));
  notes(answer).forEach(function (n) { box.appendChild(n); });
  if (!rows.length) { box.appendChild(h('p', { className: 'rpt-empty', i18n: 'reports.empty' })); return; }
  box.appendChild(h('figure', { className: 'rpt-figure' }, [
    h('figcaption', { i18n: 'reports.chart.team_conversations' }),
    barChart(rows.map(function (r) { return { key: r.team, label: r.name, value: r.conversations }; }),
      { testid: 'teams-chart', title: t('reports.chart.team_conversations') }),
  ]));
  box.appendChild(table('report-teams-table', groupColumns('teams'), rows, function (r) {
    return { testid: 'report-team-row', data: { team: r.team } };
  }));
}

function pValue(p) { return fmt.number(p, 3); }

function ruleCard(rule, named) {
  var f = rule.funnel;
  var u = rule.uplift;
  var steps = FUNNEL.map(function (step) {
    return { key: step, label: t('reports.step.' + step), value: f[step], cls: step === 'held_out' || step === 'orders_held_out' ? 'rpt-bar-control' : '' };
  });
  var arms = [
    { key: 'invited', label: t('reports.arm.invited'), value: u.conversion_invited, text: fmt.percent(u.conversion_invited, 2) },
    { key: 'held_out', label: t('reports.arm.held_out'), value: u.conversion_held_out, text: fmt.percent(u.conversion_held_out, 2), cls: 'rpt-bar-control' },
  ];
  var absolute = (u.absolute >= 0 ? '+' : '') + fmt.number(u.absolute * 100, 2);
  var upliftText = u.relative == null
    ? t('reports.uplift_norel', { absolute: absolute, p: pValue(u.p_value) })
    : t('reports.uplift', { absolute: absolute, relative: (u.relative >= 0 ? '+' : '') + fmt.percent(u.relative, 1), p: pValue(u.p_value) });
  return h('article', { className: 'rpt-rule', testid: 'report-rule', data: { rule: rule.rule_id, enabled: rule.enabled == null ? null : String(rule.enabled) } }, [
    h('header', { className: 'rpt-rule-head' }, [
      h('h3', { className: 'rpt-rule-id', testid: 'rule-name', text: rule.name || rule.rule_id }),
      rule.name ? h('span', { className: 'rpt-note', testid: 'rule-id', text: rule.rule_id }) : null,
      rule.enabled === false ? h('span', { className: 'rpt-badge rpt-badge-no', testid: 'rule-off', i18n: 'reports.rules.off' }) : null,
      named && rule.name == null ? h('span', { className: 'rpt-note', testid: 'rule-removed', i18n: 'reports.rules.removed' }) : null,
      rule.since ? h('span', { className: 'rpt-note', text: t('reports.rules.since', { date: fmt.date(rule.since) }) }) : null,
    ]),
    h('div', { className: 'rpt-charts' }, [
      h('figure', { className: 'rpt-figure' }, [
        h('figcaption', { i18n: 'reports.funnel' }),
        barChart(steps, { testid: 'rule-funnel-chart', title: t('reports.funnel') + ' ' + (rule.name || rule.rule_id) }),
      ]),
      h('figure', { className: 'rpt-figure' }, [
        h('figcaption', { i18n: 'reports.arms' }),
        barChart(arms, { testid: 'rule-arms-chart', title: t('reports.arms') }),
        h('p', { className: 'rpt-uplift', testid: 'rule-uplift' }, [
          h('span', {
            className: 'rpt-badge ' + (u.significant ? 'rpt-badge-yes' : 'rpt-badge-no'),
            testid: 'rule-significance',
            data: { significant: u.significant ? 'true' : 'false' },
            i18n: u.significant ? 'reports.significant' : 'reports.not_significant',
          }),
          ' ',
          h('span', { text: upliftText }),
        ]),
        h('p', {
          className: 'rpt-note',
          text: t('reports.revenue_per_visitor', {
            invited: fmt.number(u.revenue_per_visitor_invited, 2),
            held_out: fmt.number(u.revenue_per_visitor_held_out, 2),
            p: pValue(u.revenue_p_value),
          }),
        }),
      ]),
    ]),
  ]);
}

function renderRules(box, answer) {
  box.appendChild(h('div', { className: 'rpt-toolbar' }, [csvLink('rules')]));
  if (answer.loading) box.appendChild(h('p', { className: 'rpt-note', i18n: 'reports.rules.loading' }));
  var rules = answer.rules || [];
  if (!rules.length) { box.appendChild(h('p', { className: 'rpt-empty', i18n: 'reports.rules.none' })); return; }
  rules.forEach(function (rule) { box.appendChild(ruleCard(rule, !!answer.named)); });
}

function assistedTable(testid, rowTestid, rows) {
  var cur = function (r) { return r.currency === 'XXX' ? undefined : r.currency; };
  return table(testid, [
    { key: 'currency', label: 'reports.assisted.currency', value: function (r) { return r.currency; } },
    { key: 'orders', label: 'reports.assisted.orders_col', num: true, value: function (r) { return fmt.number(r.orders); } },
    { key: 'orders_assisted', label: 'reports.assisted.orders_assisted', num: true, value: function (r) { return fmt.number(r.orders_assisted); } },
    { key: 'orders_share', label: 'reports.assisted.orders_share', num: true, value: function (r) { return fmt.percent(r.orders_share); } },
    { key: 'revenue', label: 'reports.assisted.revenue', num: true, value: function (r) { return fmt.money(r.revenue, cur(r)); } },
    { key: 'revenue_assisted', label: 'reports.assisted.revenue_assisted', num: true, value: function (r) { return fmt.money(r.revenue_assisted, cur(r)); } },
    { key: 'revenue_share', label: 'reports.assisted.revenue_share', num: true, value: function (r) { return fmt.percent(r.revenue_share); } },
  ], rows, function (r) { return { testid: rowTestid, data: { currency: r.currency } }; });
}

// Orders the browser reported are the visitor's claims (anyone can post one): never revenue,
// shown apart so a store that sends orders only from the page still sees them.
function browserClaims(browser) {
  if (!browser || (!browser.orders && !browser.over_cap)) return null;
  var section = h('section', { className: 'rpt-browser', testid: 'assisted-browser' }, [
    h('h3', { i18n: 'reports.assisted.browser' }),
    h('p', { className: 'rpt-note', i18n: 'reports.assisted.browser_note' }),
  ]);
  if (browser.over_cap) {
    section.appendChild(h('p', {
      className: 'rpt-note', testid: 'assisted-browser-over-cap',
      text: t('reports.assisted.browser_over_cap', { count: fmt.number(browser.over_cap) }),
    }));
  }
  if ((browser.currencies || []).length) {
    section.appendChild(assistedTable('report-assisted-browser-table', 'report-assisted-browser-row', browser.currencies));
  }
  return section;
}

function renderAssisted(box, answer) {
  box.appendChild(h('div', { className: 'rpt-toolbar' }, [csvLink('assisted')]));
  notes(answer).forEach(function (n) { box.appendChild(n); });
  var share = h('div', { className: 'rpt-share', testid: 'assisted-share', data: { share: answer.orders_share } }, [
    donut(answer.orders_share, 'assisted-donut', t('reports.assisted.orders')),
    h('div', { className: 'rpt-share-text' }, [
      h('strong', { i18n: 'reports.assisted.orders' }),
      h('span', { testid: 'assisted-orders', text: t('reports.assisted.of', { part: fmt.number(answer.orders_assisted), whole: fmt.number(answer.orders) }) }),
    ]),
  ]);
  box.appendChild(share);
  var rows = answer.currencies || [];
  if (!rows.length) {
    box.appendChild(h('p', { className: 'rpt-empty', i18n: 'reports.empty' }));
  } else {
    box.appendChild(h('figure', { className: 'rpt-figure' }, [
      h('figcaption', { i18n: 'reports.assisted.revenue_share' }),
      barChart(rows.map(function (r) {
        return { key: r.currency, label: r.currency, value: r.revenue_share || 0, text: fmt.percent(r.revenue_share) };
      }), { testid: 'assisted-chart', title: t('reports.assisted.revenue_share') }),
    ]));
    box.appendChild(assistedTable('report-assisted-table', 'report-assisted-row', rows));
  }
  var claims = browserClaims(answer.browser);
  if (claims) box.appendChild(claims);
}

var RENDER = { agents: renderAgents, teams: renderTeams, rules: renderRules, assisted: renderAssisted };

// ---------------------------------------------------------------- the view

function build() {
  var root = views.container('reports');
  if (!root) return;
  clear(root);
  var preset = h('select', {
    className: 'rpt-select',
    testid: 'reports-period',
    attrs: { 'aria-label': t('reports.period') },
    on: { change: function () { state.preset = preset.value; syncCustom(); if (state.preset !== 'custom') load(); } },
  }, [
    h('option', { i18n: 'reports.last7', attrs: { value: '7' } }),
    h('option', { i18n: 'reports.last30', attrs: { value: '30' } }),
    h('option', { i18n: 'reports.custom', attrs: { value: 'custom' } }),
  ]);
  preset.value = state.preset;
  var from = h('input', { testid: 'reports-from', attrs: { type: 'date' } });
  var to = h('input', { testid: 'reports-to', attrs: { type: 'date' } });
  var apply = h('button', {
    className: 'btn btn-small btn-primary',
    testid: 'reports-apply',
    i18n: 'reports.apply',
    attrs: { type: 'button' },
    on: { click: function () { state.from = from.value || null; state.to = to.value || null; load(); } },
  });
  var custom = h('span', { className: 'rpt-custom' }, [
    h('label', { className: 'rpt-field' }, [h('span', { i18n: 'reports.from' }), from]),
    h('label', { className: 'rpt-field' }, [h('span', { i18n: 'reports.to' }), to]),
    apply,
  ]);
  var tabs = h('nav', { className: 'rpt-tabs', attrs: { role: 'tablist' } });
  var error = h('p', { className: 'form-error', testid: 'reports-error', attrs: { role: 'alert', hidden: true } });
  var body = h('div', { className: 'rpt-body' });
  root.appendChild(h('div', { className: 'rpt' }, [
    h('header', { className: 'rpt-head' }, [
      h('h2', { className: 'rpt-title', i18n: 'reports.title' }),
      h('label', { className: 'rpt-field' }, [h('span', { i18n: 'reports.period' }), preset]),
      custom,
    ]),
    tabs,
    error,
    body,
  ]));
  els = { root: root, preset: preset, from: from, to: to, custom: custom, tabs: tabs, error: error, body: body };
  state.built = true;
  syncCustom();
}

function syncCustom() {
  var p = period();
  if (state.preset === 'custom') {
    if (!els.from.value && p.from == null) { var d = presetPeriod(7); els.from.value = d.from; els.to.value = d.to; }
  } else {
    els.from.value = p.from; els.to.value = p.to;
  }
  show(els.custom, state.preset === 'custom');
}

function visibleTabs() {
  var admin = isAdmin();
  return TABS.filter(function (tab) { return admin || !tab.adminOnly; });
}

function renderTabs() {
  clear(els.tabs);
  visibleTabs().forEach(function (tab) {
    els.tabs.appendChild(h('button', {
      className: 'rpt-tab',
      testid: 'report-tab-' + tab.name,
      i18n: tab.label,
      attrs: { type: 'button', role: 'tab', 'aria-selected': tab.name === state.tab ? 'true' : 'false' },
      on: { click: function () { state.tab = tab.name; renderTabs(); render(); if (!state.data[tab.name]) load(); } },
    }));
  });
}

function render() {
  if (!state.built) return;
  clear(els.body);
  var message = state.errors[state.tab];
  els.error.textContent = message ? t('reports.error', { detail: message }) : '';
  show(els.error, !!message);
  var answer = state.data[state.tab];
  var box = h('section', { className: 'rpt-section', testid: 'report-' + state.tab, data: { period: period().from + '/' + period().to } });
  els.body.appendChild(box);
  if (!answer) {
    if (!message) box.appendChild(h('p', { className: 'rpt-note', i18n: 'common.loading' }));
    return;
  }
  RENDER[state.tab](box, answer);
}

function load() {
  if (!state.built) return;
  var tab = state.tab;
  var seq = ++state.seq;
  state.data = {};
  state.errors = {};
  render();
  api('GET', '/reports/' + tab + query()).then(function (answer) {
    if (seq !== state.seq) return;
    state.data[tab] = answer;
    render();
  }, function (err) {
    if (seq !== state.seq) return;
    state.errors[tab] = err.detail || err.message || String(err.status);
    state.data[tab] = null;
    render();
  });
}

views.register('reports', {
  label: 'nav.reports',
  onShow: function () {
    if (!state.built) build();
    if (!visibleTabs().some(function (tab) { return tab.name === state.tab; })) state.tab = 'agents';
    renderTabs();
    load();
  },
});

// a new locale: static labels follow data-i18n; numbers, charts and dates are re-rendered
on('locale', function () { if (state.built) { renderTabs(); render(); } });
on('reset', function () {
  state.data = {};
  state.errors = {};
  state.tab = 'agents';
  if (state.built) clear(views.container('reports'));
  state.built = false;
});
