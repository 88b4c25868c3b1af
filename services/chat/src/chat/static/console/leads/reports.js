/* The Lead reports view (the leads service's /v1/leads/reports/*): speed to lead, SLA
 * compliance, conversion and revenue; a window of days on the site's clock (`to` exclusive,
 * as the leads service counts it), a grouping, a team (admins: any; agents: their own teams),
 * and a CSV download link per table (the same query with format=csv; the agent's cookie goes
 * with the link, the console and the leads API being one site). Labels in en and fi. */
import { clear, h } from '../core/dom.js';
import { on } from '../core/events.js';
import { fmt } from '../core/format.js';
import { t } from '../core/i18n.js';
import { isAdmin, me, teamName } from '../core/me.js';
import { views } from '../core/views.js';
import { leadsApi, leadsEnabled, leadsError, leadsHref } from './api.js';
import { LEVEL } from './inbox.js';

var TABS = {
  speed: { label: 'leadReports.tab.speed', by: ['team', 'agent'] },
  sla: { label: 'leadReports.tab.sla', by: ['team', 'agent', 'validation'] },
  conversion: { label: 'leadReports.tab.conversion', by: ['validation', 'source', 'rule', 'campaign', 'team', 'agent'] },
};
var BY = {
  team: 'leadReports.by.team', agent: 'leadReports.by.agent', validation: 'leadReports.by.validation',
  source: 'leadReports.by.source', rule: 'leadReports.by.rule', campaign: 'leadReports.by.campaign',
};
function count(key) { return { key: key, num: true, value: function (r) { return fmt.number(r[key]); } }; }
function secs(key) { return { key: key, num: true, value: function (r) { return fmt.duration(r[key]); } }; }
function rate(key) { return { key: key, num: true, value: function (r) { return fmt.percent(r[key]); } }; }
var COLUMNS = {
  speed: [
    ['leadReports.col.leads', count('leads')], ['leadReports.col.contacted', count('contacted')],
    ['leadReports.col.uncontacted', count('uncontacted')], ['leadReports.col.median', secs('median_s')],
    ['leadReports.col.p90', secs('p90_s')], ['leadReports.col.medianAssigned', secs('median_after_assignment_s')],
    ['leadReports.col.p90Assigned', secs('p90_after_assignment_s')],
  ],
  sla: [
    ['leadReports.col.leads', count('leads')], ['leadReports.col.withSla', count('with_sla')],
    ['leadReports.col.met', count('met')], ['leadReports.col.breached', count('breached')],
    ['leadReports.col.pending', count('pending')], ['leadReports.col.warned', count('warned')],
    ['leadReports.col.compliance', rate('compliance')],
  ],
  conversion: [
    ['leadReports.col.leads', count('leads')], ['leadReports.col.contacted', count('contacted')],
    ['leadReports.col.qualified', count('qualified')], ['leadReports.col.won', count('won')],
    ['leadReports.col.lost', count('lost')], ['leadReports.col.recycled', count('recycled')],
    ['leadReports.col.winRate', rate('win_rate')], ['leadReports.col.conversionRate', rate('conversion_rate')],
  ],
};
var NOTES = { sla: 'leadReports.note.sla', conversion: 'leadReports.note.revenue' };

function isoDay(d) { return d.toISOString().slice(0, 10); }
function defaults() {
  var today = new Date();
  var to = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + 1));
  var from = new Date(to.getTime() - 30 * 86400000);
  return { from: isoDay(from), to: isoDay(to) };
}

var state = fresh();
function fresh() {
  var d = defaults();
  return { tab: 'speed', by: 'team', team: '', from: d.from, to: d.to, answer: null, asked: null, error: null, seq: 0 };
}

function query(format) {
  var parts = ['by=' + encodeURIComponent(state.by), 'from=' + state.from, 'to=' + state.to];
  if (state.team) parts.push('team=' + encodeURIComponent(state.team));
  if (format) parts.push('format=' + format);
  return '/reports/' + state.tab + '?' + parts.join('&');
}

function load() {
  var seq = ++state.seq;
  var asked = query();
  state.error = null;
  return leadsApi('GET', asked).then(function (answer) {
    if (seq !== state.seq) return;
    state.answer = answer;
    state.asked = asked;
    render();
  }, function (err) {
    if (seq !== state.seq) return;
    state.answer = null;
    var key = 'leadReports.error.' + err.code;
    state.error = t(key) !== key ? t(key) : leadsError(err);
    render();
  });
}

function rowLabel(row) {
  if (row.key == null) return t('leadReports.none');
  if (state.by === 'validation') return LEVEL[row.key] ? t(LEVEL[row.key]) : row.key;
  if (state.by === 'team') return row.name || teamName(row.key);
  if (state.by === 'agent' && me.agent && row.key === me.agent.id) return row.name || t('leads.me');
  return row.name || row.key;
}

function columns(answer) {
  var cols = COLUMNS[state.tab].map(function (c) { return Object.assign({ label: c[0], vars: {} }, c[1]); });
  if (state.tab === 'conversion') {
    (answer.currencies || []).forEach(function (cur) {
      function money(r) { return (r.revenue || []).find(function (m) { return m.currency === cur; }) || null; }
      cols.push({ key: 'orders_' + cur, num: true, label: 'leadReports.col.orders', vars: { currency: cur }, value: function (r) { var m = money(r); return fmt.number(m ? m.orders : 0); } });
      cols.push({ key: 'revenue_' + cur, num: true, label: 'leadReports.col.revenue', vars: { currency: cur }, value: function (r) { var m = money(r); return fmt.money(m ? m.amount : 0, cur === 'XXX' ? null : cur); } });
    });
  }
  return cols;
}

function field(labelKey, control) {
  return h('label', { className: 'field leads-field' }, [h('span', { i18n: labelKey }), control]);
}

function render() {
  var root = views.container('leadreports');
  if (!root) return;
  clear(root);
  var tabs = h('div', { className: 'lrpt-tabs', attrs: { role: 'tablist' } }, Object.keys(TABS).map(function (name) {
    return h('button', {
      className: 'view-tab', testid: 'lrpt-tab-' + name, i18n: TABS[name].label,
      attrs: { type: 'button', role: 'tab', 'aria-selected': name === state.tab ? 'true' : 'false' },
      on: { click: function () {
        state.tab = name;
        state.by = TABS[name].by[0];  // each report's own default grouping
        render();
        load();
      } },
    });
  }));
  var from = h('input', { testid: 'lrpt-from', attrs: { type: 'date', value: state.from } });
  var to = h('input', { testid: 'lrpt-to', attrs: { type: 'date', value: state.to } });
  function dates() { state.from = from.value; state.to = to.value; load(); }
  from.addEventListener('change', dates);
  to.addEventListener('change', dates);
  var by = h('select', { testid: 'lrpt-by' }, TABS[state.tab].by.map(function (b) { return h('option', { attrs: { value: b }, i18n: BY[b] }); }));
  by.value = state.by;
  by.addEventListener('change', function () { state.by = by.value; load(); });
  var teamList = isAdmin() ? me.teams.map(function (x) { return x.team; }) : (me.agent.teams || []);
  var team = h('select', { testid: 'lrpt-team' }, [h('option', { attrs: { value: '' }, i18n: 'leadReports.allTeams' })].concat(teamList.map(function (x) {
    return h('option', { attrs: { value: x }, text: teamName(x) });
  })));
  team.value = state.team;
  team.addEventListener('change', function () { state.team = team.value; load(); });
  // an answer is shown only under the question it answers: rows of the last report or grouping
  // are not drawn under a new heading while the new one loads
  var answer = state.answer && state.asked === query() ? state.answer : null;
  var bar = h('div', { className: 'lrpt-bar' }, [
    h('h2', { className: 'leads-title', i18n: 'leadReports.title' }),
    field('leadReports.from', from), field('leadReports.to', to), field('leadReports.by', by), field('leadReports.team', team),
    h('a', { className: 'btn btn-small', testid: 'lrpt-csv', i18n: 'leadReports.csv', attrs: { href: leadsHref(query('csv')), download: '' } }),
  ]);
  var body = [];
  if (state.error) body.push(h('p', { className: 'form-error', testid: 'lrpt-error', text: state.error, attrs: { role: 'alert' } }));
  else if (!answer) body.push(h('p', { className: 'list-empty', testid: 'lrpt-loading', i18n: 'common.loading' }));
  if (answer) {
    body.push(h('p', { className: 'lrpt-note', testid: 'lrpt-timezone', text: t('leadReports.timezone', { timezone: answer.window.timezone }) }));
    if (!answer.rows.length) {
      body.push(h('p', { className: 'list-empty', testid: 'lrpt-empty', i18n: 'leadReports.empty' }));
    } else {
      var cols = columns(answer);
      var head = h('tr', {}, [h('th', { text: t(BY[state.by]), attrs: { scope: 'col' } })].concat(cols.map(function (c) {
        return h('th', { className: c.num ? 'num' : '', text: t(c.label, c.vars), attrs: { scope: 'col' } });
      })));
      var rows = answer.rows.map(function (r) { return line(r, rowLabel(r), cols, false); });
      rows.push(line(answer.total, t('leadReports.total'), cols, true));
      body.push(h('table', { className: 'lrpt-table', testid: 'lrpt-table', data: { tab: state.tab, by: state.by } }, [h('thead', {}, [head]), h('tbody', {}, rows)]));
    }
    if (NOTES[state.tab]) body.push(h('p', { className: 'lrpt-note', i18n: NOTES[state.tab] }));
  }
  root.appendChild(h('div', { className: 'lrpt-view' }, [tabs, bar].concat(body)));
}

function line(row, first, cols, total) {
  return h('tr', { testid: 'lrpt-row', data: { key: total ? null : row.key, total: total ? 'true' : null } }, [h('td', { text: first })].concat(cols.map(function (c) {
    return h('td', { className: c.num ? 'num' : '', data: { col: c.key }, text: c.value(row) });
  })));
}

on('ready', function () {
  if (!leadsEnabled() || views.list.some(function (v) { return v.name === 'leadreports'; })) return;
  views.register('leadreports', {
    label: 'nav.leadReports',
    onShow: function () { render(); load(); },
  });
});
on('locale', function () { if (views.current === 'leadreports') render(); });
on('reset', function () { state = fresh(); });
