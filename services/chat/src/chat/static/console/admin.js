/* Beckon console feature: admin — the rules editor (validation inline, live preview, backtest,
 * publish), teams, agents (invite, limits, roles, deactivate), site settings, identity secrets
 * (identity.js) and privacy (privacy.js). Admins only.
 *
 * The rules editor works on the site's whole rules document (GET /admin/rules). Editing a rule
 * builds a candidate document (the set with the form's rule in place), which the server
 * validates as the workers would (POST /admin/rules/validate): each error names its place
 * (`rules[2].when.all[1].cart_value.gte`), and is shown next to the field that place belongs
 * to; places with no field of their own are listed under the form. Publish sends the
 * candidate with the version the edit started from (a newer version in between → reload).
 *
 * A rule's conditions (`when`) are edited with the condition builder (nested "All of" /
 * "Any of" / "Not" groups of rows, one condition kind each); an error located inside the tree
 * is shown on the row (or group) it names. "Edit as JSON" switches to the raw tree; a tree the
 * builder cannot show (an unknown key, an odd value) stays in the JSON editor with a note.
 *
 * Also: the set-password page of an invited agent (`/console/#set-password=TOKEN`).
 */
import { api } from './core/api.js';
import { clear, h } from './core/dom.js';
import { on } from './core/events.js';
import { fmt } from './core/format.js';
import { t } from './core/i18n.js';
import { me } from './core/me.js';
import { views } from './core/views.js';
import { forgetIdentity, renderIdentity } from './identity.js';
import { renderPrivacy } from './privacy.js';

var WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
var SECTIONS = ['rules', 'teams', 'agents', 'site', 'identity', 'privacy'];

var state = fresh();

function fresh() {
  return {
    section: 'rules',
    loaded: false,
    rules: null,        // GET /admin/rules answer
    doc: null,          // the working rules document (may hold unpublished changes)
    dirty: false,
    editing: null,      // index in doc.rules, or -1 for a new rule
    form: null,         // the editor's inputs
    errors: [],         // [{loc, msg}] of the candidate document
    parseError: null,   // {loc, msg} when a JSON field does not parse
    valid: true,
    preview: null,
    backtest: null,
    backtestError: null,
    backtestRunning: false,
    publishNote: null,
    stale: false,
    teams: [],
    agents: [],
    site: null,
    invite: null,
    sectionError: null,
    siteErrors: [],
    siteNote: null,
  };
}

function root() { return views.container('admin'); }

function errorText(err) { return (err && (err.detail || err.message)) || String(err); }

function debounce(fn, ms) {
  var timer = null;
  return function () {
    var args = arguments;
    clearTimeout(timer);
    timer = setTimeout(function () { fn.apply(null, args); }, ms);
  };
}

// ------------------------------------------------------------------ loading

function load() {
  var jobs = [
    api('GET', '/admin/rules').then(function (r) { state.rules = r; if (!state.dirty) state.doc = clone(r.rules); }),
    api('GET', '/admin/teams').then(function (r) { state.teams = r.teams; }),
    api('GET', '/admin/agents').then(function (r) { state.agents = r.agents; }),
    api('GET', '/admin/site').then(function (r) { state.site = r.site; }),
    // each rule's figures beside it (the rules report's numbers); the list works without
    api('GET', '/reports/rules').then(function (r) {
      state.ruleStats = {};
      (r.rules || []).forEach(function (row) { state.ruleStats[row.rule_id] = row.funnel || {}; });
    }, function () { state.ruleStats = {}; }),
  ];
  return Promise.all(jobs).then(function () {
    state.loaded = true;
    state.sectionError = null;
    render();
  }, function (err) {
    state.sectionError = t('admin.failed', { detail: errorText(err) });
    render();
  });
}

function clone(value) { return JSON.parse(JSON.stringify(value)); }

// ------------------------------------------------------------------ frame

// The section tabs are built once and kept: the body below them is drawn again on every
// change. A click on a tab while the admin data arrived (its render) used to be lost when the
// tab was replaced between the mouse's press and release.
function render() {
  var container = root();
  if (!container) return;
  var frame = container.firstElementChild;
  if (!frame || !frame.classList.contains('admin')) {
    clear(container);
    frame = h('div', { className: 'admin' }, [sectionTabs(), h('div', { className: 'admin-body' })]);
    container.appendChild(frame);
  }
  frame.querySelectorAll('.admin-section-tab').forEach(function (tab) {
    tab.setAttribute('aria-pressed', tab.getAttribute('data-section') === state.section ? 'true' : 'false');
  });
  var body = frame.querySelector('.admin-body');
  clear(body);
  if (state.sectionError) {
    body.appendChild(h('p', { className: 'form-error', text: state.sectionError, attrs: { role: 'alert' } }));
  }
  body.appendChild(!state.loaded ? h('p', { className: 'admin-muted', i18n: 'admin.loading' }) : renderSection());
}

function sectionTabs() {
  return h('nav', { className: 'admin-sections', testid: 'admin-sections' }, SECTIONS.map(function (name) {
    return h('button', {
      className: 'admin-section-tab',
      testid: 'admin-section-' + name,
      i18n: 'admin.' + name,
      attrs: { type: 'button', 'data-section': name, 'aria-pressed': state.section === name ? 'true' : 'false' },
      on: { click: function () {
        if (state.section === 'identity' && name !== 'identity') forgetIdentity();  // a secret shown once goes
        state.section = name;
        render();
      } },
    });
  }));
}

function renderSection() {
  if (state.section === 'teams') return renderTeams();
  if (state.section === 'agents') return renderAgents();
  if (state.section === 'site') return renderSite();
  if (state.section === 'identity') return renderIdentity(render);
  if (state.section === 'privacy') return renderPrivacy(render);
  return renderRules();
}

// ------------------------------------------------------------------ rules: list and header

function teamOptions(selected) {
  return (state.teams.length ? state.teams : me.teams).map(function (team) {
    return h('option', { text: team.name + ' (' + team.team + ')', attrs: { value: team.team, selected: team.team === selected } });
  });
}

function publishedText() {
  var r = state.rules;
  if (!r || !r.version) return t('rules.never_published');
  if (r.published) {
    return t('rules.published_by', { version: r.version, name: r.published.by.name, at: fmt.dateTime(r.published.at) });
  }
  return t('rules.published_cli', { version: r.version });
}

// The list in the order the worker weighs the rules: highest priority first, then by id
// (triggers' `_by_priority`); indexes into doc.rules, which keeps the document's order.
function byPriority(rules) {
  function priority(rule) { var n = Number(rule.priority); return isFinite(n) ? n : 0; }
  return rules.map(function (rule, index) { return index; }).sort(function (a, b) {
    var pa = priority(rules[a]);
    var pb = priority(rules[b]);
    if (pa !== pb) return pb - pa;
    var ia = String(rules[a].id || '');
    var ib = String(rules[b].id || '');
    return ia < ib ? -1 : ia > ib ? 1 : a - b;
  });
}

function renderRules() {
  var doc = state.doc || { rules: [] };
  var list = h('table', { className: 'admin-table', testid: 'admin-rules-table' }, [
    h('thead', {}, [h('tr', {}, [
      h('th', { i18n: 'rules.enabled' }), h('th', { i18n: 'rules.priority' }),
      h('th', { i18n: 'rules.name' }), h('th', { i18n: 'rules.team' }),
      h('th', { className: 'rule-figure', i18n: 'rules.shown', attrs: { title: t('rules.figures_help') } }),
      h('th', { className: 'rule-figure', i18n: 'rules.accepted', attrs: { title: t('rules.figures_help') } }),
      h('th', { className: 'rule-figure', i18n: 'rules.orders', attrs: { title: t('rules.figures_help') } }),
      h('th', {}),
    ])]),
    h('tbody', {}, byPriority(doc.rules).map(function (index) {
      var rule = doc.rules[index];
      var figures = (state.ruleStats || {})[rule.id];
      function figure(testid, key) {
        return h('td', { className: 'rule-figure', testid: testid, text: figures ? fmt.number(figures[key] || 0) : t('common.none') });
      }
      var toggle = h('input', {
        testid: 'rule-enabled',
        attrs: { type: 'checkbox', checked: rule.enabled !== false, 'aria-label': t('rules.enabled') + ' ' + rule.name },
        on: { change: function () { rule.enabled = toggle.checked; changed(); } },
      });
      return h('tr', { className: 'rule-row' + (state.editing === index ? ' is-editing' : ''), testid: 'rule-row', data: { 'rule-id': rule.id, enabled: String(rule.enabled !== false) } }, [
        h('td', {}, [toggle]),
        h('td', { text: String(rule.priority || 0) }),
        h('td', {}, [h('span', { className: 'rule-row-name', text: rule.name }), h('span', { className: 'admin-muted rule-row-id', text: ' ' + rule.id })]),
        h('td', { text: rule.team || 'sales' }),
        figure('rule-shown', 'shown'),
        figure('rule-accepted', 'accepted'),
        figure('rule-orders', 'orders_invited'),
        h('td', {}, [h('button', {
          className: 'btn btn-small', testid: 'rule-edit', i18n: 'rules.edit', attrs: { type: 'button' },
          on: { click: function () { openEditor(index); } },
        })]),
      ]);
    })),
  ]);
  var status = state.parseError ? 1 : state.errors.length;
  var hours = h('select', { testid: 'backtest-hours', attrs: { 'aria-label': t('rules.backtest_hours') } }, [1, 24, 168].map(function (n) {
    return h('option', { i18n: 'rules.hours_' + n, attrs: { value: String(n), selected: n === (state.backtestHours || 24) } });
  }));
  hours.addEventListener('change', function () { state.backtestHours = Number(hours.value); });
  var canPublish = state.valid && !state.parseError && !state.publishing && !state.stale;
  return h('section', { className: 'admin-rules', testid: 'admin-rules' }, [
    h('header', { className: 'admin-header' }, [
      h('h2', { i18n: 'rules.title' }),
      h('span', { className: 'admin-muted', testid: 'rules-version', text: publishedText() }),
      h('span', { className: 'admin-spacer' }),
      h('button', { className: 'btn', testid: 'rule-new', i18n: 'rules.new', attrs: { type: 'button' }, on: { click: function () { openEditor(-1); } } }),
    ]),
    doc.rules.length ? list : h('p', { className: 'admin-muted', i18n: 'rules.none' }),
    state.editing !== null ? renderEditor() : null,
    h('div', { className: 'admin-actions' }, [
      h('span', { className: 'admin-muted', text: t('rules.backtest_hours') }),
      hours,
      h('button', {
        className: 'btn', testid: 'rule-backtest', i18n: 'rules.backtest',
        attrs: { type: 'button', disabled: !state.valid || !!state.parseError || state.backtestRunning },
        on: { click: runBacktest },
      }),
      h('button', {
        className: 'btn btn-primary', testid: 'rule-publish', i18n: state.publishing ? 'rules.publishing' : 'rules.publish',
        attrs: { type: 'button', disabled: !canPublish },
        on: { click: publish },
      }),
      h('span', {
        className: 'admin-note' + (status ? ' is-bad' : (state.dirty ? ' is-pending' : '')), testid: 'rules-validity',
        text: status ? t('rules.invalid', { n: status }) : (state.dirty ? t('rules.unsaved') : t('rules.valid')),
      }),
    ]),
    h('p', { className: 'admin-note', testid: 'publish-status', attrs: { role: 'status' }, text: state.publishNote || '' }),
    state.stale ? h('button', { className: 'btn btn-small', testid: 'rules-reload', i18n: 'rules.reload', attrs: { type: 'button' }, on: { click: reload } }) : null,
    renderBacktest(),
  ]);
}

function reload() {
  state.dirty = false;
  state.stale = false;
  state.editing = null;
  state.form = null;
  state.errors = [];
  state.parseError = null;
  state.valid = true;
  state.publishNote = null;
  load();
}

// ------------------------------------------------------------------ rules: the editor

// where an error's place belongs: the first part of its location inside the rule
var FIELD_OF = {
  id: 'id', name: 'name', enabled: 'enabled', priority: 'priority', team: 'team', message: 'message',
  when: 'when', holdout_percent: 'holdout', business_hours: 'hours',
  'limits.once_per': 'once_per', 'limits.cooldown': 'cooldown', 'limits.max_per_hour': 'max_per_hour',
};

// `rules[2].limits.cooldown` (editing rule 2) -> 'cooldown'; null: no field of its own
function fieldFor(loc, index) {
  var prefix = 'rules[' + index + ']';
  if (loc.indexOf(prefix) !== 0) return null;
  var rest = loc.slice(prefix.length).replace(/^\./, '');
  var parts = rest.split(/[.[]/);
  var two = parts.slice(0, 2).join('.');
  return FIELD_OF[two] || FIELD_OF[parts[0]] || null;
}

function durationText(value) {
  if (value == null || value === '') return '';
  var n = Number(value);
  if (!isFinite(n)) return String(value);
  if (n % 3600 === 0 && n >= 3600) return (n / 3600) + 'h';
  if (n % 60 === 0 && n >= 60) return (n / 60) + 'm';
  return n + 's';
}

function openEditor(index) {
  var rule = index >= 0 ? state.doc.rules[index] : {
    id: '', name: '', enabled: true, priority: 0, team: (me.site && me.site.default_team) || 'sales',
    message: '', when: { all: [{ page_type: 'product' }] }, limits: { once_per: 'session', cooldown: 600 },
    holdout_percent: 10,
  };
  var limits = rule.limits || {};
  state.editing = index;
  state.form = {
    id: rule.id, name: rule.name, enabled: rule.enabled !== false, priority: String(rule.priority || 0),
    team: rule.team || 'sales', message: rule.message || '',
    when: JSON.stringify(rule.when, null, 2),
    once_per: limits.once_per === null ? '' : (limits.once_per || 'session'),
    cooldown: durationText(limits.cooldown == null ? 600 : limits.cooldown),
    max_per_hour: limits.max_per_hour == null ? '' : String(limits.max_per_hour),
    holdout: String(rule.holdout_percent == null ? 10 : rule.holdout_percent),
    hours: rule.business_hours ? JSON.stringify(rule.business_hours) : '',
    base: rule,   // fields the form does not show (description, default, expires_after)
    whenMode: 'builder',
    tree: null,
    whenNote: null,
  };
  try {
    state.form.tree = readWhen(rule.when);
  } catch (e) {
    if (!(e instanceof Unrepresentable)) throw e;
    state.form.whenMode = 'json';
    state.form.whenNote = t('when.cannot', { detail: e.detail });
  }
  state.preview = null;
  render();
  validateSoon();
  previewSoon();
  var first = root().querySelector('[data-testid="rule-' + (index >= 0 ? 'name' : 'id') + '"]');
  if (first) first.focus();
}

function numberOrText(text) {
  var trimmed = String(text).trim();
  if (trimmed === '') return undefined;
  var n = Number(trimmed);
  return isFinite(n) ? n : trimmed;   // the server says what is wrong with text
}

// The rule the form describes; {rule, parseError}
function formRule() {
  var f = state.form;
  var rule = {};
  Object.keys(f.base || {}).forEach(function (k) { rule[k] = f.base[k]; });
  rule.id = f.id.trim();
  rule.name = f.name;
  rule.enabled = f.enabled;
  rule.priority = numberOrText(f.priority);
  if (rule.priority === undefined) delete rule.priority;
  rule.team = f.team;
  rule.message = f.message;
  var limits = {};
  Object.keys((f.base && f.base.limits) || {}).forEach(function (k) { limits[k] = f.base.limits[k]; });
  limits.once_per = f.once_per === '' ? null : f.once_per;
  limits.cooldown = numberOrText(f.cooldown);
  if (limits.cooldown === undefined) delete limits.cooldown;
  limits.max_per_hour = numberOrText(f.max_per_hour);
  if (limits.max_per_hour === undefined) limits.max_per_hour = null;
  rule.limits = limits;
  rule.holdout_percent = numberOrText(f.holdout);
  if (rule.holdout_percent === undefined) delete rule.holdout_percent;
  var parseError = null;
  if (f.whenMode === 'builder') {
    rule.when = writeWhen(f.tree);
  } else {
    try {
      rule.when = JSON.parse(f.when);
    } catch (e) {
      parseError = { field: 'when', msg: t('rules.bad_json', { detail: e.message }) };
    }
  }
  if (f.hours.trim()) {
    try {
      rule.business_hours = JSON.parse(f.hours);
    } catch (e) {
      parseError = parseError || { field: 'hours', msg: t('rules.bad_json', { detail: e.message }) };
    }
  } else {
    rule.business_hours = null;
  }
  return { rule: rule, parseError: parseError };
}

// The whole document with the form's rule in place (or appended).
function candidate() {
  var doc = clone(state.doc || { rules: [] });
  if (state.editing === null) return { doc: doc, parseError: null };
  var made = formRule();
  if (state.editing >= 0) doc.rules[state.editing] = made.rule;
  else doc.rules.push(made.rule);
  return { doc: doc, parseError: made.parseError };
}

function editingIndex() {
  if (state.editing === null) return null;
  return state.editing >= 0 ? state.editing : (state.doc ? state.doc.rules.length : 0);
}

var validateSoon = debounce(validate, 250);
var previewSoon = debounce(updatePreview, 250);

function validate() {
  var made = candidate();
  state.parseError = made.parseError;
  if (made.parseError) {
    state.valid = false;
    showErrors();
    return Promise.resolve();
  }
  var asked = made.doc;
  return api('POST', '/admin/rules/validate', { rules: asked }).then(function (answer) {
    state.errors = answer.errors || [];
    state.valid = !!answer.ok;
    showErrors();
  }, function (err) {
    state.errors = [{ loc: '', msg: errorText(err) }];
    state.valid = false;
    showErrors();
  });
}

// Puts each error next to its field (or in the list), without rebuilding the form.
function showErrors() {
  var container = root();
  if (!container) return;
  container.querySelectorAll('[data-testid="rule-error"]').forEach(function (n) { n.remove(); });
  container.querySelectorAll('.when-group.has-error, .when-row.has-error').forEach(function (n) { n.classList.remove('has-error'); });
  var others = container.querySelector('[data-testid="rule-errors"]');
  var index = editingIndex();
  var unplaced = [];
  var errors = state.errors.slice();
  if (state.parseError) {
    errors = [{ loc: 'rules[' + index + '].' + state.parseError.field, msg: state.parseError.msg, field: state.parseError.field }];
  }
  errors.forEach(function (error) {
    var field = error.field || (index !== null ? fieldFor(error.loc, index) : null);
    var slot = (field === 'when' && builderSlot(container, error.loc, index)) ||
      (field && container.querySelector('[data-error-for="' + field + '"]'));
    var node = h('p', { className: 'form-error rule-error', testid: 'rule-error', data: { loc: error.loc, field: field }, text: error.msg, attrs: { role: 'alert' } });
    if (slot) slot.appendChild(node);
    else unplaced.push(error);
  });
  if (others) {
    clear(others);
    others.hidden = !unplaced.length;
    if (unplaced.length) {
      others.appendChild(h('p', { className: 'admin-subtitle', i18n: 'rules.other_errors' }));
      unplaced.forEach(function (error) {
        others.appendChild(h('p', { className: 'form-error rule-error', testid: 'rule-error', data: { loc: error.loc }, text: (error.loc ? error.loc + ': ' : '') + error.msg }));
      });
    }
  }
  refreshActions();
}

function refreshActions() {
  var container = root();
  if (!container) return;
  var bad = state.parseError ? 1 : state.errors.length;
  var publishBtn = container.querySelector('[data-testid="rule-publish"]');
  if (publishBtn) publishBtn.disabled = !(state.valid && !state.parseError && !state.publishing && !state.stale);
  var backtestBtn = container.querySelector('[data-testid="rule-backtest"]');
  if (backtestBtn) backtestBtn.disabled = !(state.valid && !state.parseError) || state.backtestRunning;
  var note = container.querySelector('[data-testid="rules-validity"]');
  if (note) {
    note.textContent = bad ? t('rules.invalid', { n: bad }) : (state.dirty || state.editing !== null ? t('rules.unsaved') : t('rules.valid'));
    note.className = 'admin-note' + (bad ? ' is-bad' : (state.dirty || state.editing !== null ? ' is-pending' : ''));
  }
}

function updatePreview() {
  if (!state.form) return;
  var made = formRule();
  api('POST', '/admin/rules/preview', { rule: { message: made.rule.message } }).then(function (answer) {
    state.preview = answer;
    showPreview();
  }, function (err) {
    state.preview = { ok: false, text: null, errors: [{ msg: errorText(err) }] };
    showPreview();
  });
}

function showPreview() {
  var box = root() && root().querySelector('[data-testid="rule-preview"]');
  if (!box) return;
  clear(box);
  var p = state.preview;
  if (!p) { box.appendChild(h('span', { className: 'admin-muted', i18n: 'rules.preview_none' })); return; }
  box.setAttribute('data-ok', p.ok ? 'true' : 'false');
  if (p.text) {
    box.appendChild(h('span', { className: 'rule-preview-bubble', testid: 'rule-preview-text', text: p.text }));
  } else {
    box.appendChild(h('span', { className: 'admin-muted', text: (p.errors && p.errors[0] && p.errors[0].msg) || '' }));
  }
}

function input(field, type, labelKey, extra) {
  var f = state.form;
  var node;
  extra = extra || {};
  if (type === 'textarea') {
    node = h('textarea', { testid: 'rule-' + field, attrs: { rows: extra.rows || 3, spellcheck: 'false' } });
    node.value = f[field];
  } else if (type === 'checkbox') {
    node = h('input', { testid: 'rule-' + field + '-input', attrs: { type: 'checkbox', checked: f[field] } });
  } else if (type === 'select') {
    node = h('select', { testid: 'rule-' + field }, extra.options);
    node.value = f[field];
  } else {
    node = h('input', { testid: 'rule-' + field, attrs: { type: 'text', autocomplete: 'off', inputmode: extra.inputmode } });
    node.value = f[field];
  }
  node.addEventListener(type === 'checkbox' || type === 'select' ? 'change' : 'input', function () {
    f[field] = type === 'checkbox' ? node.checked : node.value;
    validateSoon();
    if (field === 'message') previewSoon();
  });
  return h('label', { className: 'field admin-field admin-field-' + field }, [
    h('span', { i18n: labelKey }),
    node,
    extra.help ? h('small', { className: 'admin-muted', text: extra.help }) : null,
    h('div', { className: 'admin-field-errors', data: { 'error-for': field } }),
  ]);
}

function cheatSheet() {
  var catalog = (state.rules && state.rules.catalog) || {};
  var items = [
    ['page_type', '"cart" | ["product", "category"]  (' + (catalog.page_types || []).join(', ') + ')'],
    ['url', '{"glob": "*/sale/*"} | {"contains": "…"} | {"regex": "…"}'],
    ['cart_value / cart_items / product_views / score / orders', '{"gte": 100}  (gte, gt, lte, lt)'],
    ['time_on_site / time_on_page / checkout_idle', '{"gte": "3m"}'],
    ['category / categories_viewed / source / medium / campaign / segment', '"name" | ["a", "b"]'],
    ['returning / from_email / seen_price / identified', 'true | false'],
    ['event', '"product_viewed" …'],
    ['all / any / not', '[...] / [...] / {...}'],
  ];
  return h('details', { className: 'admin-cheatsheet', testid: 'rule-cheatsheet' }, [
    h('summary', { i18n: 'rules.cheatsheet' }),
    h('dl', {}, items.reduce(function (acc, item) {
      acc.push(h('dt', { text: item[0] }));
      acc.push(h('dd', { text: item[1] }));
      return acc;
    }, [])),
    h('p', { className: 'admin-muted', text: t('rules.variables', { list: (catalog.variables || []).map(function (v) { return '{' + v + '}'; }).join(' ') }) }),
  ]);
}

// ------------------------------------------------------------------ rules: the condition builder
//
// The `when` tree as nested groups ("All of" / "Any of" / "Not") of rows (one condition each).
// A group is {group: 'all'|'any'|'not', items: [...]}, a row {kind, op/value | values | bounds}.
// It reads any tree the contracts accept (also the dumped form, with null bounds and pattern
// kinds) and writes the contracts' JSON shape; writing gives each node its place
// (`when.all[1]`), which is how a located error (`rules[0].when.all[1].cart_value.gte`)
// finds its row. What it cannot show (an unknown key, an odd value) stays in the JSON editor.

var KIND_TYPES = {
  url: 'pattern', referrer: 'pattern',
  page_type: 'choice', event: 'choice', segment: 'choice',
  category: 'names', categories_viewed: 'names', source: 'names', medium: 'names',
  campaign: 'names', custom_event: 'names',
  cart_value: 'number', cart_items: 'number', product_views: 'number', score: 'number', orders: 'number',
  time_on_site: 'duration', time_on_page: 'duration', checkout_idle: 'duration',
  returning: 'bool', from_email: 'bool', seen_price: 'bool', identified: 'bool',
};
var KIND_ORDER = [
  'page_type', 'url', 'category', 'categories_viewed', 'product_views', 'cart_value', 'cart_items',
  'time_on_site', 'time_on_page', 'checkout_idle', 'source', 'medium', 'campaign', 'referrer',
  'from_email', 'returning', 'identified', 'orders', 'score', 'segment', 'seen_price', 'event',
  'custom_event',
];
var GROUP_OPS = ['all', 'any', 'not'];
var OPERATORS = ['gte', 'gt', 'lte', 'lt'];
var PATTERNS = ['contains', 'glob', 'regex'];

function Unrepresentable(detail) { this.detail = detail; }

function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }

function setKeys(v) { return Object.keys(v).filter(function (k) { return v[k] != null; }); }

function readNode(json, where) {
  if (!isObject(json) || Object.keys(json).length !== 1) throw new Unrepresentable(where + ': ' + t('when.not_a_condition'));
  var key = Object.keys(json)[0];
  var v = json[key];
  var odd = function () { return new Unrepresentable(where + ': ' + t('when.odd_value', { kind: key })); };
  if (key === 'all' || key === 'any') {
    if (!Array.isArray(v)) throw odd();
    return { group: key, items: v.map(function (c, i) { return readNode(c, where + '.' + key + '[' + i + ']'); }) };
  }
  if (key === 'not') return { group: 'not', items: [readNode(v, where + '.not')] };
  var type = KIND_TYPES[key];
  if (!type) throw new Unrepresentable(where + ': ' + t('when.unknown_kind', { kind: key }));
  var row = { kind: key };
  if (type === 'pattern') {
    if (typeof v === 'string') { row.op = 'glob'; row.value = v; return row; }
    var kinds = isObject(v) ? setKeys(v) : [];
    if (kinds.length !== 1 || PATTERNS.indexOf(kinds[0]) < 0 || typeof v[kinds[0]] !== 'string') throw odd();
    row.op = kinds[0];
    row.value = v[kinds[0]];
  } else if (type === 'choice' || type === 'names') {
    var list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every(function (x) { return typeof x === 'string'; })) throw odd();
    row.values = list.slice();
  } else if (type === 'number' || type === 'duration') {
    var ops = isObject(v) ? setKeys(v) : [];
    if (!ops.length || ops.length > 2 || ops.some(function (k) {
      return OPERATORS.indexOf(k) < 0 || (typeof v[k] !== 'number' && typeof v[k] !== 'string');
    })) throw odd();
    row.bounds = ops.map(function (k) {
      return { op: k, value: type === 'duration' && typeof v[k] === 'number' ? durationText(v[k]) : String(v[k]) };
    });
  } else {
    if (typeof v !== 'boolean') throw odd();
    row.value = v;
  }
  return row;
}

// The builder's root is always a group; a bare condition is kept bare while it is alone.
function readWhen(json) {
  var node = readNode(json, 'when');
  if (node.group) return node;
  return { group: 'all', items: [node], bare: true };
}

function numberOr(text, keepText) {
  var trimmed = String(text).trim();
  if (trimmed === '') return '';          // the server says a value is missing, at its place
  var n = Number(trimmed);
  return isFinite(n) ? n : (keepText ? trimmed : String(text));
}

function writeNode(node, path) {
  node.path = path;
  if (node.group === 'not') {
    return { not: node.items.length ? writeNode(node.items[0], path + '.not') : null };
  }
  if (node.group) {
    var out = {};
    out[node.group] = node.items.map(function (c, i) { return writeNode(c, path + '.' + node.group + '[' + i + ']'); });
    return out;
  }
  var type = KIND_TYPES[node.kind];
  var value;
  if (type === 'pattern') { value = {}; value[node.op] = node.value; }
  else if (type === 'choice' || type === 'names') value = node.values.slice();
  else if (type === 'number' || type === 'duration') {
    value = {};
    node.bounds.forEach(function (b) { value[b.op] = numberOr(b.value, type === 'duration'); });
  } else value = node.value;
  var cond = {};
  cond[node.kind] = value;
  return cond;
}

function writeWhen(root) {
  if (root.bare && root.group === 'all' && root.items.length === 1 && !root.items[0].group) {
    root.path = null;
    return writeNode(root.items[0], 'when');
  }
  return writeNode(root, 'when');
}

function segmentNames() {
  var th = (state.doc && state.doc.scoring && state.doc.scoring.thresholds) || { warm: 30, hot: 60 };
  return ['cold'].concat(Object.keys(th).sort(function (a, b) { return th[a] - th[b]; }));
}

function choicesFor(kind) {
  var catalog = (state.rules && state.rules.catalog) || {};
  if (kind === 'page_type') return catalog.page_types || ['product'];
  if (kind === 'event') return catalog.events || ['page_view'];
  return segmentNames();
}

function freshRow(kind) {
  var type = KIND_TYPES[kind];
  var row = { kind: kind };
  if (type === 'pattern') { row.op = 'contains'; row.value = ''; }
  else if (type === 'choice') row.values = kind === 'page_type' ? ['product'] : [choicesFor(kind).slice(-1)[0]];
  else if (type === 'names') row.values = [];
  else if (type === 'number' || type === 'duration') row.bounds = [{ op: 'gte', value: '' }];
  else row.value = true;
  return row;
}

function whenChanged() {
  writeWhen(state.form.tree);
  validateSoon();
}

function structureChanged() {
  var box = root() && root().querySelector('[data-testid="when-builder"]');
  if (box) fillBuilder(box);
  validateSoon();
}

function fillBuilder(box) {
  var tree = state.form.tree;
  writeWhen(tree);
  clear(box);
  box.appendChild(groupEl(tree, null));
}

function smallButton(testid, key, onClick, text) {
  return h('button', {
    className: 'btn btn-small when-btn', testid: testid, i18n: text ? null : key, text: text || null,
    attrs: { type: 'button', 'aria-label': t(key), title: t(key) }, on: { click: onClick },
  });
}

function groupEl(group, parent) {
  var op = h('select', { testid: 'when-group-op', attrs: { 'aria-label': t('when.group') } }, GROUP_OPS.map(function (g) {
    return h('option', { i18n: 'when.group_' + g, attrs: { value: g } });
  }));
  op.value = group.group;
  op.addEventListener('change', function () {
    if (op.value === 'not' && group.items.length > 1) group.items = [{ group: group.group, items: group.items }];
    group.group = op.value;
    structureChanged();
  });
  var full = group.group === 'not' && group.items.length >= 1;
  return h('div', { className: 'when-group when-group-' + group.group, testid: 'when-group', data: { op: group.group, 'when-path': group.path } }, [
    h('div', { className: 'when-group-head' }, [
      op,
      parent ? smallButton('when-remove', 'when.remove_group', function () {
        parent.items.splice(parent.items.indexOf(group), 1);
        structureChanged();
      }, '×') : null,
    ]),
    h('div', { className: 'admin-field-errors when-errors' }),
    h('div', { className: 'when-children' }, group.items.map(function (item) {
      return item.group ? groupEl(item, group) : rowEl(item, group);
    })),
    full ? null : h('div', { className: 'when-group-actions' }, [
      smallButton('when-add', 'when.add', function () { group.items.push(freshRow('page_type')); structureChanged(); }),
      smallButton('when-add-group', 'when.add_group', function () {
        group.items.push({ group: 'any', items: [freshRow('page_type')] });
        structureChanged();
      }),
    ]),
  ]);
}

function valueInput(value, help, onInput) {
  var node = h('input', { className: 'when-value', testid: 'when-value', attrs: { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: help || null, 'aria-label': t('when.value') } });
  node.value = value;
  node.addEventListener('input', function () { onInput(node.value); whenChanged(); });
  return node;
}

function opSelect(options, prefix, value, onChange) {
  var node = h('select', { className: 'when-op', testid: 'when-op', attrs: { 'aria-label': t('when.op') } }, options.map(function (o) {
    return h('option', { i18n: prefix + o, attrs: { value: o } });
  }));
  node.value = value;
  node.addEventListener('change', function () { onChange(node.value); whenChanged(); });
  return node;
}

function rowInputs(row) {
  var type = KIND_TYPES[row.kind];
  if (type === 'pattern') {
    return [
      opSelect(PATTERNS, 'when.pattern.', row.op, function (v) { row.op = v; }),
      valueInput(row.value, null, function (v) { row.value = v; }),
    ];
  }
  if (type === 'names') {
    return [valueInput(row.values.join(', '), t('when.names_help'), function (v) {
      row.values = v.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
    })];
  }
  if (type === 'choice') {
    var options = choicesFor(row.kind).slice();
    row.values.forEach(function (v) { if (options.indexOf(v) < 0) options.push(v); });  // kept; the server names it
    // one checkbox per choice (a native multi-select hides what is picked and needs Ctrl)
    var box = h('div', {
      className: 'when-value when-many when-choices', testid: 'when-value',
      attrs: { role: 'group', 'aria-label': t('when.value'), title: t('when.many_help') },
    });
    options.forEach(function (o) {
      var check = h('input', { testid: 'when-choice', data: { value: o }, attrs: { type: 'checkbox', value: o, checked: row.values.indexOf(o) >= 0 } });
      check.addEventListener('change', function () {
        row.values = Array.prototype.slice.call(box.querySelectorAll('input:checked')).map(function (c) { return c.value; });
        whenChanged();
      });
      box.appendChild(h('label', { className: 'admin-check when-choice' }, [check, ' ', o]));
    });
    return [box];
  }
  if (type === 'number' || type === 'duration') {
    var parts = [];
    row.bounds.forEach(function (bound, i) {
      if (i) parts.push(h('span', { className: 'admin-muted', i18n: 'when.add_bound' }));
      parts.push(opSelect(OPERATORS, 'when.op.', bound.op, function (v) { bound.op = v; }));
      var node = valueInput(bound.value, type === 'duration' ? t('when.duration_help') : null, function (v) { bound.value = v; });
      if (type === 'number') node.setAttribute('inputmode', 'decimal');
      node.classList.add('when-short');
      parts.push(node);
      if (i) {
        parts.push(smallButton('when-remove-bound', 'when.remove_bound', function () {
          row.bounds.splice(i, 1);
          structureChanged();
        }, '×'));
      }
    });
    if (row.bounds.length < 2) {
      parts.push(smallButton('when-add-bound', 'when.add_bound', function () {
        var first = row.bounds[0].op;
        row.bounds.push({ op: first.charAt(0) === 'g' ? 'lte' : 'gte', value: '' });
        structureChanged();
      }));
    }
    return parts;
  }
  var yes = h('select', { className: 'when-value', testid: 'when-value', attrs: { 'aria-label': t('when.value') } }, [
    h('option', { i18n: 'when.yes', attrs: { value: 'true' } }),
    h('option', { i18n: 'when.no', attrs: { value: 'false' } }),
  ]);
  yes.value = row.value ? 'true' : 'false';
  yes.addEventListener('change', function () { row.value = yes.value === 'true'; whenChanged(); });
  return [yes];
}

function rowEl(row, group) {
  var kind = h('select', { className: 'when-kind', testid: 'when-kind', attrs: { 'aria-label': t('when.kind') } }, KIND_ORDER.map(function (k) {
    return h('option', { i18n: 'when.kind.' + k, attrs: { value: k } });
  }));
  kind.value = row.kind;
  kind.addEventListener('change', function () {
    group.items[group.items.indexOf(row)] = freshRow(kind.value);
    structureChanged();
  });
  return h('div', { className: 'when-row', testid: 'when-row', data: { kind: row.kind, 'when-path': row.path } }, [
    h('div', { className: 'when-row-main' }, [kind].concat(rowInputs(row), [
      smallButton('when-remove', 'when.remove', function () {
        group.items.splice(group.items.indexOf(row), 1);
        structureChanged();
      }, '×'),
    ])),
    h('div', { className: 'admin-field-errors when-errors' }),
  ]);
}

// The error slot of the builder node an error's place names (the nearest enclosing one).
function builderSlot(container, loc, index) {
  var prefix = 'rules[' + index + '].';
  if (!state.form || state.form.whenMode !== 'builder' || loc.indexOf(prefix) !== 0) return null;
  var builder = container.querySelector('[data-testid="when-builder"]');
  if (!builder) return null;
  var path = loc.slice(prefix.length);
  while (path.indexOf('when') === 0) {
    var node = builder.querySelector('[data-when-path="' + CSS.escape(path) + '"]');
    if (node) {
      node.classList.add('has-error');
      return node.querySelector(':scope > .when-errors');
    }
    var shorter = path.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
    if (shorter === path) break;
    path = shorter;
  }
  return null;
}

function toggleWhenMode() {
  var f = state.form;
  if (f.whenMode === 'builder') {
    f.when = JSON.stringify(writeWhen(f.tree), null, 2);
    f.whenMode = 'json';
    f.whenNote = null;
  } else {
    var parsed;
    try {
      parsed = JSON.parse(f.when);
    } catch (e) {
      f.whenNote = t('when.cannot', { detail: t('when.bad_json') });
      return replaceWhenSection();
    }
    try {
      f.tree = readWhen(parsed);
      f.whenMode = 'builder';
      f.whenNote = null;
    } catch (e) {
      if (!(e instanceof Unrepresentable)) throw e;
      f.whenNote = t('when.cannot', { detail: e.detail });
    }
  }
  replaceWhenSection();
}

function replaceWhenSection() {
  var old = root() && root().querySelector('[data-testid="rule-when-field"]');
  if (old) old.replaceWith(whenSection());
  validateSoon();
}

function whenSection() {
  var f = state.form;
  var builder = f.whenMode === 'builder';
  var body;
  if (builder) {
    body = h('div', { className: 'when-builder', testid: 'when-builder' });
    fillBuilder(body);
  } else {
    var area = h('textarea', { testid: 'rule-when', attrs: { rows: 8, spellcheck: 'false', 'aria-label': t('rules.when') } });
    area.value = f.when;
    area.addEventListener('input', function () { f.when = area.value; validateSoon(); });
    body = h('div', {}, [area, h('small', { className: 'admin-muted', text: t('rules.when_help') }), cheatSheet()]);
  }
  return h('div', { className: 'field admin-field admin-field-when', testid: 'rule-when-field', data: { mode: f.whenMode } }, [
    h('div', { className: 'when-head' }, [
      h('span', { i18n: 'rules.when' }),
      h('button', {
        className: 'btn btn-small', testid: 'when-advanced', i18n: builder ? 'when.advanced' : 'when.to_builder',
        attrs: { type: 'button', 'aria-pressed': builder ? 'false' : 'true' }, on: { click: toggleWhenMode },
      }),
    ]),
    f.whenNote ? h('p', { className: 'admin-note is-bad', testid: 'when-note', attrs: { role: 'status' }, text: f.whenNote }) : null,
    body,
    h('div', { className: 'admin-field-errors', data: { 'error-for': 'when' } }),
  ]);
}

function renderEditor() {
  var once = [['session', 'rules.once_session'], ['visitor', 'rules.once_visitor'], ['', 'rules.once_none']].map(function (o) {
    return h('option', { i18n: o[1], attrs: { value: o[0] } });
  });
  var editor = h('form', { className: 'admin-editor', testid: 'rule-editor', attrs: { novalidate: true } }, [
    h('div', { className: 'admin-grid' }, [
      input('id', 'text', 'rules.id'),
      input('name', 'text', 'rules.name'),
      input('priority', 'text', 'rules.priority', { inputmode: 'numeric' }),
      input('team', 'select', 'rules.team', { options: teamOptions(state.form.team) }),
      input('enabled', 'checkbox', 'rules.enabled'),
    ]),
    whenSection(),
    h('div', { className: 'admin-grid admin-grid-2' }, [
      input('message', 'textarea', 'rules.message', { rows: 3 }),
      h('div', { className: 'rule-preview' }, [
        h('span', { className: 'admin-subtitle', i18n: 'rules.preview' }),
        h('div', { className: 'rule-preview-box', testid: 'rule-preview' }),
      ]),
    ]),
    h('fieldset', { className: 'admin-grid' }, [
      h('legend', { i18n: 'rules.limits' }),
      input('once_per', 'select', 'rules.once_per', { options: once }),
      input('cooldown', 'text', 'rules.cooldown'),
      input('max_per_hour', 'text', 'rules.max_per_hour', { inputmode: 'numeric' }),
      input('holdout', 'text', 'rules.holdout', { inputmode: 'decimal' }),
    ]),
    input('hours', 'textarea', 'rules.hours', { rows: 2, help: t('rules.hours_help') }),
    h('div', { className: 'admin-field-errors admin-other-errors', testid: 'rule-errors', attrs: { hidden: true } }),
    h('div', { className: 'admin-actions' }, [
      h('button', { className: 'btn btn-primary', testid: 'rule-save', i18n: 'rules.save', attrs: { type: 'submit' } }),
      h('button', { className: 'btn', testid: 'rule-cancel', i18n: 'rules.cancel', attrs: { type: 'button' }, on: { click: closeEditor } }),
      state.editing >= 0 ? h('button', { className: 'btn btn-danger-ghost', testid: 'rule-delete', i18n: 'rules.delete', attrs: { type: 'button' }, on: { click: deleteRule } }) : null,
    ]),
  ]);
  editor.addEventListener('submit', function (e) { e.preventDefault(); keepRule(); });
  setTimeout(function () { showErrors(); showPreview(); }, 0);
  return editor;
}

function keepRule() {
  validate().then(function () {
    var index = editingIndex();
    var mine = state.errors.filter(function (e) { return e.loc.indexOf('rules[' + index + ']') === 0; });
    if (state.parseError || mine.length) return;
    var made = formRule();
    if (state.editing >= 0) state.doc.rules[state.editing] = made.rule;
    else state.doc.rules.push(made.rule);
    state.editing = null;
    state.form = null;
    changed();
  });
}

function closeEditor() {
  state.editing = null;
  state.form = null;
  state.parseError = null;
  render();
  validate();
}

function deleteRule() {
  state.doc.rules.splice(state.editing, 1);
  state.editing = null;
  state.form = null;
  changed();
}

function changed() {
  state.dirty = true;
  state.publishNote = null;
  render();
  validate();
}

// ------------------------------------------------------------------ rules: backtest, publish

function runBacktest() {
  var made = candidate();
  if (made.parseError) return;
  state.backtestRunning = true;
  state.backtestError = null;
  state.backtest = null;
  render();
  api('POST', '/admin/rules/backtest', { rules: made.doc, hours: state.backtestHours || 24 }).then(function (answer) {
    state.backtest = answer;
  }, function (err) {
    state.backtestError = t('rules.backtest_failed', { detail: errorText(err) });
    if (err.body && err.body.errors) { state.errors = err.body.errors; state.valid = false; }
  }).then(function () {
    state.backtestRunning = false;
    render();
  });
}

function renderBacktest() {
  if (state.backtestRunning) return h('p', { className: 'admin-muted', testid: 'backtest-result', data: { state: 'running' }, i18n: 'rules.backtest_running' });
  if (state.backtestError) return h('p', { className: 'form-error', testid: 'backtest-result', data: { state: 'failed' }, text: state.backtestError });
  var r = state.backtest;
  if (!r) return null;
  var num = function (v, d) { return fmt.number(v, d); };
  var row = function (item, label, testid) {
    return h('tr', { testid: testid, data: { 'rule-id': item.rule_id } }, [
      h('td', { text: label }),
      h('td', { text: num(item.fired) }),
      h('td', { text: num(item.fires_per_hour, 2) }),
      h('td', { text: num(item.peak_fires_per_hour) }),
      h('td', { text: num(item.expected_conversations, 1) }),
      h('td', { text: num(item.agents_needed) }),
    ]);
  };
  return h('section', { className: 'admin-backtest', testid: 'backtest-result', data: { state: 'done' } }, [
    h('p', { className: 'admin-muted', text: t('rules.backtest_summary', { events: num(r.events), visitors: num(r.visitors) }) }),
    r.truncated ? h('p', { className: 'admin-note is-bad', i18n: 'rules.backtest_truncated' }) : null,
    h('table', { className: 'admin-table' }, [
      h('thead', {}, [h('tr', {}, ['rules.bt_rule', 'rules.bt_fired', 'rules.bt_per_hour', 'rules.bt_peak', 'rules.bt_conversations', 'rules.bt_agents'].map(function (k) {
        return h('th', { i18n: k });
      }))]),
      h('tbody', {}, r.rules.map(function (item) { return row(item, item.name + ' (' + item.rule_id + ')', 'backtest-row'); }).concat([
        row(r.total, t('rules.bt_total'), 'backtest-total'),
      ])),
    ]),
  ]);
}

function publish() {
  var made = candidate();
  if (made.parseError) return;
  state.publishing = true;
  refreshActions();
  var base = state.rules ? state.rules.version : 0;
  api('POST', '/admin/rules/publish', { rules: made.doc, base_version: base }).then(function (answer) {
    state.publishNote = t('rules.published_now', { version: answer.version });
    state.dirty = false;
    state.editing = null;
    state.form = null;
    state.rules.version = answer.version;
    state.rules.published = answer.published;
    state.rules.source = 'console';
    state.rules.rules = answer.rules;
    state.doc = clone(answer.rules);
    state.errors = [];
    state.valid = true;
  }, function (err) {
    if (err.status === 409) { state.stale = true; state.publishNote = t('rules.stale'); }
    else if (err.body && err.body.errors) { state.errors = err.body.errors; state.valid = false; state.publishNote = errorText(err); }
    else state.publishNote = errorText(err);
  }).then(function () {
    state.publishing = false;
    render();
    if (state.errors.length) showErrors();
  });
}

// ------------------------------------------------------------------ teams

function renderTeams() {
  var idInput = h('input', { testid: 'team-new-id', attrs: { type: 'text', autocomplete: 'off', placeholder: t('teams.new_id') } });
  var nameInput = h('input', { testid: 'team-new-name', attrs: { type: 'text', autocomplete: 'off', placeholder: t('teams.new_name') } });
  var error = h('p', { className: 'form-error', testid: 'team-error', attrs: { role: 'alert', hidden: true } });
  var create = h('form', { className: 'admin-inline-form', testid: 'team-create' }, [
    idInput, nameInput,
    h('button', { className: 'btn btn-primary', testid: 'team-create-submit', i18n: 'teams.create', attrs: { type: 'submit' } }),
  ]);
  create.addEventListener('submit', function (e) {
    e.preventDefault();
    api('POST', '/admin/teams', { team: idInput.value.trim(), name: nameInput.value.trim() }).then(function (r) {
      state.teams = r.teams;
      render();
    }, function (err) { error.textContent = errorText(err); error.hidden = false; });
  });
  var active = state.agents.filter(function (a) { return a.active; });
  return h('section', { className: 'admin-teams', testid: 'admin-teams' }, [
    h('header', { className: 'admin-header' }, [h('h2', { i18n: 'teams.title' })]),
    h('div', { className: 'admin-cards' }, state.teams.map(function (team) {
      var rename = h('input', { testid: 'team-name', attrs: { type: 'text', 'aria-label': t('teams.new_name') } });
      rename.value = team.name;
      var memberIds = team.members.map(function (m) { return m.id; });
      var pick = h('select', { testid: 'team-add-agent' }, [h('option', { i18n: 'teams.pick', attrs: { value: '' } })].concat(
        active.filter(function (a) { return memberIds.indexOf(a.id) < 0; }).map(function (a) {
          return h('option', { text: a.name, attrs: { value: a.id } });
        })));
      var teamError = h('p', { className: 'form-error', attrs: { role: 'alert', hidden: true } });
      var fail = function (err) { teamError.textContent = errorText(err); teamError.hidden = false; };
      var done = function (r) { state.teams = r.teams; refreshAgents(); };
      return h('article', { className: 'admin-card', testid: 'team-row', data: { team: team.team } }, [
        h('div', { className: 'admin-inline-form' }, [
          h('strong', { text: team.team }),
          rename,
          h('button', { className: 'btn btn-small', testid: 'team-rename', i18n: 'teams.rename', attrs: { type: 'button' }, on: { click: function () {
            api('POST', '/admin/teams/' + encodeURIComponent(team.team), { name: rename.value.trim() }).then(done, fail);
          } } }),
        ]),
        h('p', { className: 'admin-subtitle', i18n: 'teams.members' }),
        team.members.length ? h('ul', { className: 'admin-chips' }, team.members.map(function (m) {
          return h('li', { className: 'admin-chip', testid: 'team-member', data: { 'agent-id': m.id } }, [
            m.name,
            h('button', { className: 'admin-chip-x', testid: 'team-remove', text: '×', attrs: { type: 'button', 'aria-label': t('teams.remove', { name: m.name }) }, on: { click: function () {
              api('POST', '/admin/teams/' + encodeURIComponent(team.team) + '/members/' + encodeURIComponent(m.id) + '/remove', {}).then(done, fail);
            } } }),
          ]);
        })) : h('p', { className: 'admin-muted', i18n: 'teams.no_members' }),
        h('div', { className: 'admin-inline-form' }, [
          pick,
          h('button', { className: 'btn btn-small', testid: 'team-add', i18n: 'teams.add', attrs: { type: 'button' }, on: { click: function () {
            if (!pick.value) return;
            api('POST', '/admin/teams/' + encodeURIComponent(team.team) + '/members', { agent_id: pick.value }).then(done, fail);
          } } }),
        ]),
        teamError,
      ]);
    })),
    create,
    error,
  ]);
}

function refreshAgents() {
  return api('GET', '/admin/agents').then(function (r) { state.agents = r.agents; render(); }, function () { render(); });
}

// ------------------------------------------------------------------ agents

function teamChecks(selected, testid) {
  return h('span', { className: 'admin-checks', testid: testid }, state.teams.map(function (team) {
    var box = h('input', { attrs: { type: 'checkbox', value: team.team, checked: selected.indexOf(team.team) >= 0 } });
    return h('label', { className: 'admin-check' }, [box, ' ' + team.name]);
  }));
}

function checked(container) {
  return Array.prototype.slice.call(container.querySelectorAll('input:checked')).map(function (n) { return n.value; });
}

function roleSelect(value, testid) {
  var select = h('select', { testid: testid }, [
    h('option', { i18n: 'agents.role_agent', attrs: { value: 'agent' } }),
    h('option', { i18n: 'agents.role_admin', attrs: { value: 'admin' } }),
  ]);
  select.value = value;
  return select;
}

function renderAgents() {
  var rows = state.agents.map(function (agent) {
    var role = roleSelect(agent.role, 'agent-role');
    var max = h('input', { testid: 'agent-max-chats', attrs: { type: 'number', min: 1, max: 50, 'aria-label': t('agents.max_chats') } });
    max.value = String(agent.max_chats);
    var avatar = h('input', { className: 'admin-avatar-input', testid: 'agent-avatar', attrs: { type: 'url', placeholder: t('agents.avatar_url'), 'aria-label': t('agents.avatar_url') } });
    avatar.value = agent.avatar_url || '';
    var teams = teamChecks(agent.teams, 'agent-teams');
    var rowError = h('p', { className: 'form-error', testid: 'agent-error', attrs: { role: 'alert', hidden: true } });
    var fail = function (err) { rowError.textContent = errorText(err); rowError.hidden = false; };
    var status = agent.active ? (agent.invite_pending ? t('agents.pending') : t('status.' + agent.status)) : t('agents.deactivated');
    return h('tr', { className: 'agent-row' + (agent.active ? '' : ' is-inactive'), testid: 'agent-row', data: { 'agent-id': agent.id, active: String(agent.active) } }, [
      h('td', {}, [h('strong', { text: agent.name }), h('div', { className: 'admin-muted', text: agent.email }), agent.active ? avatar : null]),
      h('td', {}, [role]),
      h('td', { testid: 'agent-status', text: status }),
      h('td', { testid: 'agent-load', text: agent.open_chats + ' / ' + agent.max_chats }),
      h('td', {}, [max]),
      h('td', {}, [teams]),
      h('td', { className: 'admin-row-actions' }, agent.active ? [
        h('button', { className: 'btn btn-small btn-primary', testid: 'agent-save', i18n: 'agents.save', attrs: { type: 'button' }, on: { click: function () {
          api('POST', '/admin/agents/' + encodeURIComponent(agent.id), {
            role: role.value, max_chats: Number(max.value), teams: checked(teams), avatar_url: avatar.value.trim(),
          }).then(function () { return Promise.all([refreshAgents(), api('GET', '/admin/teams').then(function (r) { state.teams = r.teams; })]); }, fail);
        } } }),
        h('button', { className: 'btn btn-small', testid: 'agent-new-link', i18n: 'agents.new_link', attrs: { type: 'button' }, on: { click: function () {
          api('POST', '/admin/agents/' + encodeURIComponent(agent.id) + '/invite', {}).then(function (r) {
            state.invite = { name: agent.name, invite: r.invite };
            render();
          }, fail);
        } } }),
        agent.id !== (me.agent && me.agent.id) ? h('button', { className: 'btn btn-small btn-danger-ghost', testid: 'agent-deactivate', i18n: 'agents.deactivate', attrs: { type: 'button' }, on: { click: function () {
          if (!window.confirm(t('agents.confirm_deactivate', { name: agent.name }))) return;
          api('POST', '/admin/agents/' + encodeURIComponent(agent.id) + '/deactivate', {}).then(refreshAgents, fail);
        } } }) : null,
        rowError,
      ] : [h('button', { className: 'btn btn-small', testid: 'agent-new-link', i18n: 'agents.new_link', attrs: { type: 'button' }, on: { click: function () {
        api('POST', '/admin/agents/' + encodeURIComponent(agent.id) + '/invite', {}).then(function (r) {
          state.invite = { name: agent.name, invite: r.invite };
          render();
        }, fail);
      } } }), rowError]),
    ]);
  });
  return h('section', { className: 'admin-agents', testid: 'admin-agents' }, [
    h('header', { className: 'admin-header' }, [h('h2', { i18n: 'agents.title' })]),
    h('table', { className: 'admin-table' }, [
      h('thead', {}, [h('tr', {}, ['agents.name', 'agents.role', 'agents.status', 'agents.load', 'agents.max_chats', 'agents.teams', ''].map(function (k) {
        return h('th', k ? { i18n: k } : {});
      }))]),
      h('tbody', {}, rows),
    ]),
    renderInvite(),
  ]);
}

function renderInvite() {
  var name = h('input', { testid: 'invite-name', attrs: { type: 'text', autocomplete: 'off', required: true } });
  var email = h('input', { testid: 'invite-email', attrs: { type: 'email', autocomplete: 'off', required: true } });
  var role = roleSelect('agent', 'invite-role');
  var max = h('input', { testid: 'invite-max-chats', attrs: { type: 'number', min: 1, max: 50, value: 5 } });
  var teams = teamChecks([], 'invite-teams');
  var error = h('p', { className: 'form-error', testid: 'invite-error', attrs: { role: 'alert', hidden: true } });
  var form = h('form', { className: 'admin-editor', testid: 'agent-invite' }, [
    h('h3', { i18n: 'agents.invite' }),
    h('div', { className: 'admin-grid' }, [
      h('label', { className: 'field' }, [h('span', { i18n: 'agents.name' }), name]),
      h('label', { className: 'field' }, [h('span', { i18n: 'agents.email' }), email]),
      h('label', { className: 'field' }, [h('span', { i18n: 'agents.role' }), role]),
      h('label', { className: 'field' }, [h('span', { i18n: 'agents.max_chats' }), max]),
    ]),
    h('div', { className: 'field' }, [h('span', { i18n: 'agents.teams' }), teams]),
    error,
    h('button', { className: 'btn btn-primary', testid: 'invite-submit', i18n: 'agents.invite_send', attrs: { type: 'submit' } }),
  ]);
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    api('POST', '/admin/agents', {
      name: name.value.trim(), email: email.value.trim(), role: role.value,
      max_chats: Number(max.value), teams: checked(teams),
    }).then(function (r) {
      state.invite = { name: r.agent.name, invite: r.invite };
      return Promise.all([refreshAgents(), api('GET', '/admin/teams').then(function (x) { state.teams = x.teams; })]);
    }, function (err) { error.textContent = errorText(err); error.hidden = false; });
  });
  var shown = null;
  if (state.invite) {
    var link = window.location.origin + state.invite.invite.path;
    var box = h('input', { testid: 'invite-link', attrs: { type: 'text', readonly: true } });
    box.value = link;
    shown = h('div', { className: 'admin-invite-link', testid: 'invite-result' }, [
      h('p', { text: t('agents.invite_link', { name: state.invite.name }) }),
      box,
    ]);
  }
  return h('div', {}, [shown, form]);
}

// ------------------------------------------------------------------ site settings

function renderSite() {
  var s = state.site || {};
  var fields = {};
  function text(key, labelKey, value, type) {
    var node = h(type === 'textarea' ? 'textarea' : 'input', { testid: 'site-' + key.replace(/_/g, '-'), attrs: type === 'textarea' ? { rows: 3 } : { type: type || 'text', autocomplete: 'off' } });
    node.value = value == null ? '' : value;
    fields[key] = node;
    return h('label', { className: 'field admin-field' }, [h('span', { i18n: labelKey }), node, h('div', { className: 'admin-field-errors', data: { 'site-error-for': key } })]);
  }
  var color = h('input', { testid: 'site-color-picker', attrs: { type: 'color', 'aria-label': t('site.color') } });
  color.value = /^#[0-9a-f]{6}$/i.test(s.color || '') ? s.color : '#1f6feb';
  var typing = h('input', { testid: 'site-typing-preview', attrs: { type: 'checkbox', checked: !!s.typing_preview } });
  var language = h('select', { testid: 'site-language' }, [
    h('option', { i18n: 'site.language_auto', attrs: { value: 'auto' } }),
    h('option', { i18n: 'language.en', attrs: { value: 'en' } }),
    h('option', { i18n: 'language.fi', attrs: { value: 'fi' } }),
  ]);
  language.value = s.language || 'auto';
  var team = h('select', { testid: 'site-default-team' }, teamOptions(s.default_team));
  var hours = s.business_hours || {};
  var dayInputs = {};
  var days = h('div', { className: 'admin-days', testid: 'site-hours' }, WEEKDAYS.map(function (day) {
    // an empty day is closed: the placeholder says so (an example time would look saved)
    var node = h('input', { className: 'admin-hours', testid: 'site-hours-' + day, attrs: { type: 'text', placeholder: t('site.hours_none'), autocomplete: 'off' } });
    node.value = (hours[day] || []).join(', ');
    dayInputs[day] = node;
    return h('label', { className: 'field' }, [h('span', { i18n: 'day.' + day }), node]);
  }));
  var colorText = text('color', 'site.color', s.color);
  color.addEventListener('input', function () { fields.color.value = color.value; });
  var note = h('p', { className: 'admin-note', testid: 'site-status', attrs: { role: 'status' }, text: state.siteNote || '' });
  var others = h('div', { className: 'admin-field-errors', testid: 'site-errors' });
  var form = h('form', { className: 'admin-editor', testid: 'site-form', attrs: { novalidate: true } }, [
    text('allowed_origins', 'site.origins', (s.allowed_origins || []).join('\n'), 'textarea'),
    text('greeting', 'site.greeting', s.greeting),
    h('div', { className: 'admin-inline-form' }, [colorText, color]),
    h('label', { className: 'admin-check' }, [typing, ' ', h('span', { i18n: 'site.typing_preview' })]),
    h('label', { className: 'field' }, [h('span', { i18n: 'site.language' }), language]),
    text('offline_message', 'site.offline_message', s.offline_message),
    h('label', { className: 'field' }, [h('span', { i18n: 'site.default_team' }), team]),
    text('timezone', 'site.timezone', s.timezone),
    h('div', { className: 'field' }, [h('span', { i18n: 'site.hours' }), days, h('div', { className: 'admin-field-errors', data: { 'site-error-for': 'business_hours' } })]),
    others,
    h('button', { className: 'btn btn-primary', testid: 'site-save', i18n: 'site.save', attrs: { type: 'submit' } }),
    note,
  ]);
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var body = {
      allowed_origins: fields.allowed_origins.value.split(/\n|,/).map(function (x) { return x.trim(); }).filter(Boolean),
      greeting: fields.greeting.value,
      color: fields.color.value.trim(),
      typing_preview: typing.checked,
      language: language.value,
      offline_message: fields.offline_message.value,
      default_team: team.value,
      timezone: fields.timezone.value.trim() || 'UTC',
    };
    var week = {};
    var open = false;
    WEEKDAYS.forEach(function (day) {
      var ranges = dayInputs[day].value.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
      week[day] = ranges;
      if (ranges.length) open = true;
    });
    week.closed_dates = hours.closed_dates || [];  // not on the form: kept as they are
    if (open) body.business_hours = week; else body.clear_business_hours = true;
    form.querySelectorAll('[data-testid="site-error"]').forEach(function (n) { n.remove(); });
    api('POST', '/admin/site', body).then(function (r) {
      state.site = r.site;
      state.siteNote = t('admin.saved');
      render();
    }, function (err) {
      note.textContent = errorText(err);
      ((err.body && err.body.errors) || []).forEach(function (error) {
        var key = String(error.loc || '').split(/[.[]/)[0];
        var slot = form.querySelector('[data-site-error-for="' + key + '"]') || others;
        slot.appendChild(h('p', { className: 'form-error', testid: 'site-error', data: { loc: error.loc }, text: error.msg }));
      });
    });
  });
  state.siteNote = null;
  // read-only: what a store owner pastes into the snippet and their Segment SDKs
  function key(name, value) {
    var node = h('input', { testid: 'site-' + name.replace(/_/g, '-'), attrs: { type: 'text', readonly: true } });
    node.value = value || '';
    return h('label', { className: 'field admin-field' }, [h('span', { i18n: 'site.' + name }), node]);
  }
  var keys = h('div', { className: 'admin-editor', testid: 'site-keys' }, [
    h('h3', { i18n: 'site.keys' }),
    key('site_key', s.site_key),
    key('write_key', s.write_key),
  ]);
  return h('section', { className: 'admin-site', testid: 'admin-site' }, [
    h('header', { className: 'admin-header' }, [h('h2', { i18n: 'site.title' })]),
    keys,
    form,
  ]);
}

// ------------------------------------------------------------------ set-password page

function setPasswordPage() {
  var match = /^#set-password=([A-Za-z0-9_-]{20,200})$/.exec(window.location.hash || '');
  if (!match) return;
  var token = match[1];
  var password = h('input', { testid: 'setpw-password', attrs: { type: 'password', autocomplete: 'new-password', required: true, minlength: 10 } });
  var confirm = h('input', { testid: 'setpw-confirm', attrs: { type: 'password', autocomplete: 'new-password', required: true } });
  var error = h('p', { className: 'form-error', testid: 'setpw-error', attrs: { role: 'alert', hidden: true } });
  var form = h('form', { className: 'login-card admin-setpw-card', testid: 'setpw-form' }, [
    h('h1', { className: 'brand brand-large', text: 'Beckon' }),
    h('p', { className: 'login-sub', i18n: 'setpw.title' }),
    h('label', { className: 'field' }, [h('span', { i18n: 'setpw.password' }), password]),
    h('label', { className: 'field' }, [h('span', { i18n: 'setpw.confirm' }), confirm]),
    error,
    h('button', { className: 'btn btn-primary btn-block', testid: 'setpw-submit', i18n: 'setpw.submit', attrs: { type: 'submit' } }),
  ]);
  var page = h('main', { className: 'login admin-setpw', testid: 'setpw-page' }, [form]);
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    error.hidden = true;
    if (password.value !== confirm.value) { error.textContent = t('setpw.mismatch'); error.hidden = false; return; }
    api('POST', '/invite/accept', { token: token, password: password.value }, { login: true }).then(function (r) {
      window.history.replaceState(null, '', window.location.pathname);
      clear(form);
      form.appendChild(h('p', { testid: 'setpw-done', text: t('setpw.done', { name: r.name, email: r.email }) }));
      form.appendChild(h('button', { className: 'btn btn-primary btn-block', testid: 'setpw-login', i18n: 'setpw.to_login', attrs: { type: 'button' }, on: { click: function () { page.remove(); } } }));
    }, function (err) { error.textContent = errorText(err); error.hidden = false; });
  });
  document.body.appendChild(page);
  password.focus();
}

// ------------------------------------------------------------------ wiring

views.register('admin', {
  label: 'nav.admin',
  adminOnly: true,
  onShow: function () { render(); load(); },
});
on('locale', function () { if (views.current === 'admin') render(); });
on('reset', function () { state = fresh(); var c = root(); if (c) clear(c); });

setPasswordPage();
