/* The Leads view (the leads service's inbox, through leads/api.js): my leads, my teams' and
 * (admins) the whole site's; filters by status, team, validation and SLA state; each lead's
 * first-contact countdown; claim, reassign, status changes with a note, and a link to the
 * source conversation's transcript (the chats view, with the visitor card beside it).
 *
 * Live: the list is asked again every POLL_MS while the view is shown and the page visible,
 * and at once when the window gets the focus back; the countdowns tick every second between.
 *
 * SLA colours (data-sla on the row and the clock): `breached` (red) once the first-contact
 * deadline has passed; `warning` (amber) once the policy's first warning point has passed
 * (the leads service's `sla.state` = warning; 50 % of the time by default) or its next timer
 * fell due since the last answer; `running` otherwise; `none` without a deadline (contacted,
 * closed, no policy).
 */
import { showConversation } from '../chats/conversation.js';
import { api } from '../core/api.js';
import { clear, h } from '../core/dom.js';
import { on } from '../core/events.js';
import { fmt } from '../core/format.js';
import { t } from '../core/i18n.js';
import { isAdmin, me, teamName } from '../core/me.js';
import { views } from '../core/views.js';
import { leadsApi, leadsEnabled, leadsError, leadsHref } from './api.js';

export var POLL_MS = 5000;

var STATUS = {
  new: 'leads.status.new', assigned: 'leads.status.assigned', contacted: 'leads.status.contacted',
  qualified: 'leads.status.qualified', won: 'leads.status.won', lost: 'leads.status.lost',
  recycled: 'leads.status.recycled',
};
var OPEN = ['new', 'assigned', 'contacted', 'qualified'];
export var LEVEL = {
  contact_only: 'lead.contact_only', interested: 'lead.interested',
  qualified: 'lead.qualified', ready_to_buy: 'lead.ready_to_buy',
};
var SLA = {
  none: 'leads.sla.none', running: 'leads.sla.running', warning: 'leads.sla.warning',
  breached: 'leads.sla.breached',
};
var CHANGE = {
  contact: 'leads.change.contact', qualify: 'leads.change.qualify', win: 'leads.change.win',
  lose: 'leads.change.lose', recycle: 'leads.change.recycle', reopen: 'leads.change.reopen',
};
var CHANNEL = {
  phone: 'leads.channel.phone', email: 'leads.channel.email', chat: 'leads.channel.chat',
  sms: 'leads.channel.sms', meeting: 'leads.channel.meeting', other: 'leads.channel.other',
};
// the lifecycle's lost reasons (services/leads: domain/lifecycle.py LOST_REASONS)
var REASON = {
  no_response: 'leads.reason.no_response', not_interested: 'leads.reason.not_interested',
  bought_elsewhere: 'leads.reason.bought_elsewhere', price: 'leads.reason.price',
  no_budget: 'leads.reason.no_budget', not_a_fit: 'leads.reason.not_a_fit',
  invalid_contact: 'leads.reason.invalid_contact', duplicate: 'leads.reason.duplicate',
  spam: 'leads.reason.spam', other: 'leads.reason.other',
};
var SCOPE = { mine: 'leads.scope.mine', team: 'leads.scope.team', all: 'leads.scope.all' };
var TOUCH = {
  lead_marked: 'leads.touch.lead_marked', email_captured: 'leads.touch.email_captured',
  offline_message: 'leads.touch.offline_message', conversation_closed: 'leads.touch.conversation_closed',
  identify: 'leads.touch.identify', order_completed: 'leads.touch.order_completed',
  assigned: 'leads.touch.assigned', reassigned: 'leads.touch.reassigned', unassigned: 'leads.touch.unassigned',
  contacted: 'leads.touch.contacted', qualified: 'leads.touch.qualified', won: 'leads.touch.won',
  lost: 'leads.touch.lost', recycled: 'leads.touch.recycled', reopened: 'leads.touch.reopened',
};

function label(table, value) { return table[value] ? t(table[value]) : String(value == null ? '' : value); }
function enc(id) { return encodeURIComponent(String(id)); }

var state = fresh();
function fresh() {
  return {
    built: false,
    scope: 'team',
    filters: { status: 'open', team: '', validation: '', sla: '' },
    leads: [],
    loadedAt: 0,        // Date.now() of the last list answer
    selected: null,     // lead id
    detail: null,       // the selected lead's answer
    agents: new Map(),  // agent id -> {name, teams} (chat's transfer targets: online agents)
    error: null,
    poll: null,
    tick: null,
    seq: 0,
  };
}
var els = {};

// ---------------------------------------------------------------- SLA clock

// The clock's colour now (see the header): breached / warning / running / none.
export function slaLevel(sla, now) {
  if (!sla || sla.state === 'none' || !sla.due_at) return 'none';
  var due = Date.parse(sla.due_at);
  if (sla.state === 'breached' || now >= due) return 'breached';
  if (sla.state === 'warning') return 'warning';
  if (sla.next_due_at && now >= Date.parse(sla.next_due_at)) return 'warning';
  return 'running';
}

function slaText(lead, now) {
  var level = slaLevel(lead.sla, now);
  if (level === 'none') return lead.first_contact_at ? t('leads.sla.contacted') : t('leads.sla.none');
  var left = (Date.parse(lead.sla.due_at) - now) / 1000;
  if (level === 'breached') return t('leads.sla.late', { time: fmt.duration(-left) });
  return t('leads.sla.left', { time: fmt.duration(left) });
}

function paintClock(node, lead, now) {
  var level = slaLevel(lead.sla, now);
  node.setAttribute('data-sla', level);
  node.textContent = slaText(lead, now);
  node.setAttribute('title', t(SLA[level]));
}

function tick() {
  var now = Date.now();
  document.querySelectorAll('[data-testid="lead-sla"]').forEach(function (node) {
    var lead = findLead(node.getAttribute('data-lead-id'));
    if (!lead) return;
    paintClock(node, lead, now);
    var row = node.closest('[data-testid="lead-row"]');
    if (row) row.setAttribute('data-sla', node.getAttribute('data-sla'));
  });
}

function findLead(id) {
  if (state.detail && state.detail.lead_id === id) return state.detail;
  return state.leads.find(function (l) { return l.lead_id === id; }) || null;
}

// ---------------------------------------------------------------- loading

function query() {
  var parts = ['scope=' + enc(state.scope), 'limit=100'];
  var f = state.filters;
  if (f.status === 'open') OPEN.forEach(function (s) { parts.push('status=' + s); });
  else if (f.status) parts.push('status=' + enc(f.status));
  if (f.team) parts.push('team=' + enc(f.team));
  if (f.validation) parts.push('validation=' + enc(f.validation));
  if (f.sla) parts.push('sla=' + enc(f.sla));
  return '?' + parts.join('&');
}

function load() {
  if (!leadsEnabled() || !me.agent) return Promise.resolve();
  var seq = ++state.seq;
  return leadsApi('GET', query()).then(function (page) {
    if (seq !== state.seq) return;
    state.leads = page.leads || [];
    state.loadedAt = Date.now();
    state.error = null;
    renderList();
    if (state.selected) loadDetail(state.selected, true);
  }, function (err) {
    if (seq !== state.seq) return;
    state.error = leadsError(err);
    renderList();
  });
}

function loadAgents() {
  return api('GET', '/transfer-targets').then(function (data) {
    state.agents = new Map();
    (data.agents || []).forEach(function (a) { state.agents.set(a.id, a); });
    if (state.detail) renderDetail();
  }, function () { /* names fall back to ids */ });
}

function loadDetail(id, quiet) {
  return leadsApi('GET', '/' + enc(id)).then(function (lead) {
    if (state.selected !== id) return;
    // a poll must not wipe what the agent is typing: only a first load or a change re-renders
    var same = state.detail && state.detail.lead_id === id && JSON.stringify(state.detail) === JSON.stringify(lead);
    state.detail = lead;
    if (!quiet || !same) renderDetail();
  }, function (err) {
    if (state.selected !== id) return;
    if (!quiet) { state.detail = null; renderDetail(err); }
  });
}

function startPolling() {
  stopPolling();
  state.poll = setInterval(function () { if (!document.hidden) load(); }, POLL_MS);
  state.tick = setInterval(tick, 1000);
}

function stopPolling() {
  clearInterval(state.poll);
  clearInterval(state.tick);
  state.poll = state.tick = null;
}

// ---------------------------------------------------------------- rendering

function agentName(id) {
  if (!id) return t('leads.queued');
  if (me.agent && id === me.agent.id) return t('leads.me');
  var a = state.agents.get(id);
  return a ? a.name : id;
}

function leadName(lead) {
  return lead.name || lead.email || lead.phone || lead.company || t('leads.unnamed');
}

// a <select> of a table's keys, labelled by their i18n keys (raw: the values are the text)
function select(testid, table, value, onChange, first, raw) {
  var options = first ? [h('option', { attrs: { value: '' }, text: t(first) })] : [];
  Object.keys(table).forEach(function (k) {
    options.push(h('option', { attrs: { value: k }, text: raw ? table[k] : t(table[k]) }));
  });
  var node = h('select', { testid: testid, on: { change: function () { onChange(node.value); } } }, options);
  node.value = value || '';
  return node;
}

function build() {
  var root = views.container('leads');
  clear(root);
  var statusTable = Object.assign({ open: 'leads.filter.open' }, STATUS);
  var teams = {};
  (isAdmin() ? me.teams.map(function (x) { return x.team; }) : (me.agent.teams || [])).forEach(function (team) { teams[team] = teamName(team); });
  var scopes = Object.assign({}, SCOPE);
  if (!isAdmin()) delete scopes.all;
  function set(key) { return function (value) { state.filters[key] = value; load(); }; }
  els.list = h('div', { className: 'leads-list-wrap' });
  els.detail = h('aside', { className: 'leads-detail', testid: 'lead-detail', attrs: { hidden: true } });
  els.error = h('p', { className: 'form-error', testid: 'leads-error', attrs: { role: 'alert', hidden: true } });
  var bar = h('div', { className: 'leads-filters' }, [
    h('h2', { className: 'leads-title', i18n: 'leads.title' }),
    field('leads.filter.scope', select('leads-scope', scopes, state.scope, function (v) { state.scope = v; load(); })),
    field('leads.filter.status', select('leads-filter-status', statusTable, state.filters.status, set('status'), 'leads.filter.any')),
    field('leads.filter.team', select('leads-filter-team', teams, state.filters.team, set('team'), 'leads.filter.any', true)),
    field('leads.filter.validation', select('leads-filter-validation', LEVEL, state.filters.validation, set('validation'), 'leads.filter.any')),
    field('leads.filter.sla', select('leads-filter-sla', SLA, state.filters.sla, set('sla'), 'leads.filter.any')),
    isAdmin() ? h('a', { className: 'btn btn-small', testid: 'leads-csv', i18n: 'leads.csv', attrs: { href: leadsHref('/export.csv'), download: 'leads.csv' } }) : null,
    h('span', { className: 'leads-live', i18n: 'leads.live' }),
  ]);
  root.appendChild(h('div', { className: 'leads-view' }, [bar, els.error, h('div', { className: 'leads-body' }, [els.list, els.detail])]));
  state.built = true;
}

function field(labelKey, control) {
  return h('label', { className: 'field leads-field' }, [h('span', { i18n: labelKey }), control]);
}

function renderList() {
  if (!state.built) return;
  els.error.textContent = state.error || '';
  els.error.hidden = !state.error;
  clear(els.list);
  if (!state.leads.length) {
    els.list.appendChild(h('p', { className: 'list-empty', testid: 'leads-empty', i18n: 'leads.empty' }));
    return;
  }
  var now = Date.now();
  var head = h('tr', {}, ['leads.col.lead', 'leads.col.status', 'leads.col.validation', 'leads.col.team', 'leads.col.assignee', 'leads.col.sla', 'leads.col.created'].map(function (key) {
    return h('th', { i18n: key, attrs: { scope: 'col' } });
  }));
  var rows = state.leads.map(function (lead) {
    var clock = h('span', { className: 'lead-sla', testid: 'lead-sla', data: { 'lead-id': lead.lead_id } });
    paintClock(clock, lead, now);
    return h('tr', {
      className: 'lead-row' + (lead.lead_id === state.selected ? ' is-active' : ''),
      testid: 'lead-row',
      data: { 'lead-id': lead.lead_id, status: lead.status, sla: clock.getAttribute('data-sla'), visitor: lead.visitor_id },
      attrs: { tabindex: 0 },
      on: {
        click: function () { selectLead(lead.lead_id); },
        keydown: function (e) { if (e.key === 'Enter') selectLead(lead.lead_id); },
      },
    }, [
      h('td', { className: 'lead-name' }, [leadName(lead)]),
      h('td', {}, [h('span', { className: 'badge lead-status', testid: 'lead-status', data: { status: lead.status }, text: label(STATUS, lead.status) })]),
      h('td', { text: label(LEVEL, lead.validation) }),
      h('td', { text: teamName(lead.team) }),
      h('td', { text: agentName(lead.assignee) }),
      h('td', {}, [clock]),
      h('td', { text: fmt.time(lead.created_at) }),
    ]);
  });
  els.list.appendChild(h('table', { className: 'leads-table', testid: 'leads-list' }, [h('thead', {}, [head]), h('tbody', {}, rows)]));
}

// Opens a lead from anywhere (a link in a lead alert: #lead=<id>): the Leads view first.
export function showLead(id) {
  if (!leadsEnabled() || !me.agent) return false;
  views.show('leads');
  selectLead(String(id));
  return true;
}

function selectLead(id) {
  state.selected = id;
  state.detail = null;
  renderList();
  renderDetail();
  loadDetail(id, false);
}

function renderDetail(err) {
  if (!state.built) return;
  var box = els.detail;
  clear(box);
  box.hidden = !state.selected;
  if (!state.selected) return;
  if (err) { box.appendChild(h('p', { className: 'form-error', text: leadsError(err) })); return; }
  var lead = state.detail;
  if (!lead) { box.appendChild(h('p', { className: 'list-empty', i18n: 'common.loading' })); return; }
  var clock = h('span', { className: 'lead-sla', testid: 'lead-sla', data: { 'lead-id': lead.lead_id } });
  paintClock(clock, lead, Date.now());
  var facts = [
    ['leads.col.status', h('span', { className: 'badge lead-status', testid: 'lead-detail-status', data: { status: lead.status }, text: label(STATUS, lead.status) })],
    ['leads.col.validation', label(LEVEL, lead.validation)],
    ['leads.col.team', teamName(lead.team)],
    ['leads.col.assignee', agentName(lead.assignee)],
    ['leads.col.sla', clock],
    ['leads.field.email', lead.email],
    ['leads.field.phone', lead.phone],
    ['leads.field.company', lead.company],
    ['leads.field.source', lead.source],
    ['leads.field.lostReason', lead.lost_reason ? label(REASON, lead.lost_reason) : null],
    ['leads.field.order', lead.order_value != null ? fmt.money(lead.order_value, lead.currency) : null],
  ].filter(function (f) { return f[1] != null && f[1] !== ''; });
  box.appendChild(h('h3', { className: 'lead-detail-name', text: leadName(lead) }));
  box.appendChild(h('dl', { className: 'lead-facts' }, facts.reduce(function (acc, f) {
    acc.push(h('dt', { i18n: f[0] }));
    acc.push(h('dd', {}, [f[1]]));
    return acc;
  }, [])));
  var result = h('p', { className: 'lead-result', testid: 'lead-result', attrs: { role: 'status' } });
  box.appendChild(h('div', { className: 'lead-actions' }, [claimBox(lead, result), reassignBox(lead, result)]));
  box.appendChild(changeBox(lead, result));
  box.appendChild(result);
  box.appendChild(conversationsBox(lead));
  box.appendChild(touchesBox(lead));
}

// the answer of a change: the lead as it is now, in the list and the panel
function changed(lead, result, key) {
  state.detail = lead;
  var i = state.leads.findIndex(function (l) { return l.lead_id === lead.lead_id; });
  if (i >= 0) state.leads[i] = lead;
  renderList();
  renderDetail();
  els.detail.querySelector('[data-testid="lead-result"]').textContent = t(key);
  load();
}

function failed(result, err) {
  result.textContent = leadsError(err);
  result.className = 'lead-result form-error';
}

function claimBox(lead, result) {
  if (lead.assignee || lead.status !== 'new') return null;
  return h('button', {
    className: 'btn btn-primary btn-small', testid: 'lead-claim', i18n: 'leads.claim', attrs: { type: 'button' },
    on: { click: function (e) {
      e.target.disabled = true;
      leadsApi('POST', '/' + enc(lead.lead_id) + '/claim').then(function (l) { changed(l, result, 'leads.claimed'); }, function (err) { e.target.disabled = false; failed(result, err); });
    } },
  });
}

function reassignBox(lead, result) {
  if (!lead.assignee || OPEN.indexOf(lead.status) < 0) return null;
  if (!isAdmin() && me.agent.id !== lead.assignee) return null;
  var options = [h('option', { attrs: { value: '' }, i18n: 'leads.reassign.next' })];
  state.agents.forEach(function (a) {
    if (a.id === lead.assignee || (lead.team && (a.teams || []).indexOf(lead.team) < 0)) return;
    options.push(h('option', { attrs: { value: a.id }, text: a.name }));
  });
  var to = h('select', { testid: 'lead-reassign-to' }, options);
  return h('span', { className: 'lead-reassign' }, [
    h('label', { className: 'field leads-field' }, [h('span', { i18n: 'leads.reassign.to' }), to]),
    h('button', {
      className: 'btn btn-small', testid: 'lead-reassign', i18n: 'leads.reassign', attrs: { type: 'button' },
      on: { click: function (e) {
        e.target.disabled = true;
        leadsApi('POST', '/' + enc(lead.lead_id) + '/reassign', { to_agent_id: to.value || null }).then(function (l) { changed(l, result, 'leads.reassigned'); }, function (err) { e.target.disabled = false; failed(result, err); });
      } },
    }),
  ]);
}

function changeBox(lead, result) {
  var kinds = (lead.allowed || []).filter(function (k) { return CHANGE[k]; });
  if (!kinds.length) return h('span');
  var options = {};
  kinds.forEach(function (k) { options[k] = CHANGE[k]; });
  var channel = select('lead-channel', CHANNEL, 'phone', function () {});
  var reason = select('lead-reason', REASON, 'no_response', function () {});
  var value = h('input', { testid: 'lead-value', attrs: { type: 'number', min: 0, step: '0.01' } });
  var currency = h('input', { testid: 'lead-currency', attrs: { maxlength: 3, size: 4, value: 'EUR' } });
  var note = h('textarea', { testid: 'lead-note', attrs: { rows: 2, maxlength: 1000 } });
  var channelField = field('leads.field.channel', channel);
  var reasonField = field('leads.field.reason', reason);
  var valueField = h('span', { className: 'lead-value' }, [field('leads.field.value', value), field('leads.field.currency', currency)]);
  var change = select('lead-change', options, kinds[0], sync);
  function sync(kind) {
    channelField.hidden = kind !== 'contact';
    reasonField.hidden = kind !== 'lose';
    valueField.hidden = kind !== 'win';
  }
  sync(kinds[0]);
  var submit = h('button', { className: 'btn btn-primary btn-small', testid: 'lead-submit', i18n: 'leads.change.submit', attrs: { type: 'submit' } });
  return h('form', {
    className: 'lead-change',
    testid: 'lead-change-form',
    on: { submit: function (e) {
      e.preventDefault();
      var body = { change: change.value, note: note.value.trim() || null };
      if (change.value === 'contact') body.channel = channel.value;
      if (change.value === 'lose') body.reason = reason.value;
      if (change.value === 'win' && value.value !== '') { body.value = value.value; body.currency = currency.value || null; }
      submit.disabled = true;
      leadsApi('POST', '/' + enc(lead.lead_id) + '/status', body).then(function (l) { changed(l, result, 'leads.changed'); }, function (err) { submit.disabled = false; failed(result, err); });
    } },
  }, [
    h('h4', { i18n: 'leads.change.title' }),
    field('leads.field.change', change), channelField, reasonField, valueField,
    field('leads.field.note', note), submit,
  ]);
}

function conversationsBox(lead) {
  var list = (lead.conversations || []).map(function (c) {
    return h('li', {}, [h('button', {
      className: 'btn btn-ghost btn-small', testid: 'lead-transcript', data: { conversation: c.conversation_id },
      text: t('leads.transcript', { when: fmt.dateTime(c.added_at) }), attrs: { type: 'button' },
      on: { click: function () { showConversation(c.conversation_id); } },
    })]);
  });
  if (!list.length) return h('span');
  return h('section', { className: 'lead-convs' }, [h('h4', { i18n: 'leads.conversations' }), h('ul', {}, list)]);
}

function touchesBox(lead) {
  var items = (lead.touches || []).slice().reverse().map(function (touch) {
    var d = touch.details || {};
    var bits = [fmt.dateTime(touch.occurred_at), label(TOUCH, touch.kind)];
    if (touch.agent_id) bits.push(agentName(touch.agent_id));
    if (d.channel) bits.push(label(CHANNEL, d.channel));
    if (d.reason) bits.push(label(REASON, d.reason));
    if (touch.kind === 'order_completed' && d.reported_by === 'browser') bits.push(t('leads.touch.order_unverified'));
    var note = d.note ? h('q', { className: 'lead-touch-note', text: d.note }) : null;
    return h('li', { testid: 'lead-touch', data: { kind: touch.kind } }, [bits.join(' · '), note ? ' ' : null, note]);
  });
  return h('section', { className: 'lead-touches' }, [h('h4', { i18n: 'leads.touches' }), h('ol', {}, items)]);
}

// ---------------------------------------------------------------- the view

function focused() { if (views.current === 'leads') load(); }

on('ready', function () {
  if (!leadsEnabled() || views.list.some(function (v) { return v.name === 'leads'; })) return;
  views.register('leads', {
    label: 'nav.leads',
    onShow: function () {
      build();
      renderList();
      loadAgents();
      load();
      startPolling();
    },
    onHide: stopPolling,
  });
});
window.addEventListener('focus', focused);
document.addEventListener('visibilitychange', function () { if (!document.hidden) focused(); });
on('locale', function () { if (views.current === 'leads') { build(); renderList(); renderDetail(); } });
on('reset', function () { stopPolling(); state = fresh(); });

