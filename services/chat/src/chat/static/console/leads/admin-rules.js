/* The Leads admin's rules section: the routing rules as JSON, with the leads service's
 * located 422 problems shown at their place (the line is marked in the gutter; a click on a
 * problem selects the value it is about), the "which team would get this lead" tester over
 * the draft, and the SLA policies in the same editor. */
import { clear, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { leadsApi, leadsError } from './api.js';
import { locParts, section } from './admin-forms.js';

var SAMPLE_LEAD = { validation: 'qualified', segment: 'b2c', categories_viewed: ['Tents'], country: 'FI', language: 'fi' };
var OUTCOME = {
  chosen: 'leadAdmin.test.chosen', shadowed: 'leadAdmin.test.shadowed',
  failed: 'leadAdmin.test.failed', disabled: 'leadAdmin.test.disabled',
};

// ---------------------------------------------------------------- locating problems

// Where each value of a JSON text starts: {'rules.2.team': offset, ...} ('' is the root).
// Stops quietly at the first syntax error (JSON.parse reports that one).
export function valueOffsets(text) {
  var pos = 0;
  var found = {};
  function ws() { while (pos < text.length && /\s/.test(text[pos])) pos++; }
  function str() {
    var start = ++pos;
    while (pos < text.length && text[pos] !== '"') pos += text[pos] === '\\' ? 2 : 1;
    pos++;
    return JSON.parse(text.slice(start - 1, pos));
  }
  function value(path) {
    ws();
    found[path.join('.')] = pos;
    var c = text[pos];
    if (c === '{') {
      pos++; ws();
      if (text[pos] === '}') { pos++; return; }
      for (;;) {
        ws();
        var key = str();
        ws(); pos++;  // ':'
        value(path.concat(key));
        ws();
        if (text[pos++] !== ',') return;
      }
    } else if (c === '[') {
      pos++; ws();
      if (text[pos] === ']') { pos++; return; }
      for (var i = 0; ; i++) {
        value(path.concat(String(i)));
        ws();
        if (text[pos++] !== ',') return;
      }
    } else if (c === '"') {
      str();
    } else {
      while (pos < text.length && !/[\s,\]}]/.test(text[pos])) pos++;
    }
  }
  try { value([]); } catch (e) { /* partial map */ }
  return found;
}

// A located problem's offset in the text: 'rules[2].conditions[0].country[0]' or
// 'policies.1.team' (after `prefix`, e.g. 'document.'), else its nearest located parent.
export function problemOffset(offsets, loc, prefix) {
  var parts = locParts(loc, prefix);
  while (parts.length) {
    var key = parts.join('.');
    if (key in offsets) return offsets[key];
    parts.pop();
  }
  return 0;
}

function lineOf(text, offset) { return text.slice(0, offset).split('\n').length; }

// ---------------------------------------------------------------- a JSON editor

// {node, get(), set(value), problems(list, prefix)}: a textarea with a line gutter whose
// lines with a problem are marked, and the problems listed below, each at its line.
function jsonEditor(testid) {
  var gutter = h('pre', { className: 'ladm-gutter', attrs: { 'aria-hidden': 'true' } });
  var area = h('textarea', { className: 'ladm-json', testid: testid, attrs: { spellcheck: 'false', rows: 18 } });
  var list = h('ul', { className: 'form-error ladm-problems', testid: testid + '-problems' });
  var marked = {};
  function paintGutter() {
    clear(gutter);
    var lines = area.value.split('\n').length;
    for (var i = 1; i <= lines; i++) gutter.appendChild(h('span', { text: String(i), data: { error: marked[i] ? 'true' : null } }));
    gutter.scrollTop = area.scrollTop;
  }
  area.addEventListener('input', function () { marked = {}; paintGutter(); });
  area.addEventListener('scroll', function () { gutter.scrollTop = area.scrollTop; });
  function problems(items, prefix) {
    clear(list);
    marked = {};
    var text = area.value;
    var offsets = valueOffsets(text);
    (items || []).forEach(function (p) {
      var at = problemOffset(offsets, p.loc, prefix);
      var line = lineOf(text, at);
      marked[line] = true;
      list.appendChild(h('li', {
        className: 'ladm-problem', testid: 'ladm-problem', data: { loc: p.loc, line: line },
        text: t('leadAdmin.problemAt', { line: line, loc: p.loc || '-', msg: p.msg }),
        on: { click: function () { area.focus(); area.setSelectionRange(at, at + Math.max(1, (text.slice(at).search(/[,\n]/) + 1 || 2) - 1)); } },
      }));
    });
    paintGutter();
  }
  return {
    node: h('div', {}, [h('div', { className: 'ladm-editor' }, [gutter, area]), list]),
    get: function () { return area.value; },
    set: function (value) { area.value = JSON.stringify(value, null, 2); marked = {}; clear(list); paintGutter(); },
    problems: problems,
  };
}

// the body of a JSON editor, or null with its syntax error shown
function parsed(editor) {
  try { return JSON.parse(editor.get()); } catch (e) {
    editor.problems([{ loc: '', msg: t('leadAdmin.notJson', { error: e.message }) }]);
    return null;
  }
}

function refused(editor, status, err, prefix) {
  var list = (err.body && err.body.errors) || [];
  if (list.length) editor.problems(list, prefix);
  else editor.problems([{ loc: '', msg: leadsError(err) }]);
  status.textContent = '';
}

// ---------------------------------------------------------------- the section

export function build(root) {
  var routing = jsonEditor('ladm-routing');
  var routingStatus = h('p', { className: 'lead-result', testid: 'ladm-routing-status', attrs: { role: 'status' } });
  var sample = jsonEditor('ladm-sample');
  sample.set(SAMPLE_LEAD);
  var verdict = h('div', { testid: 'ladm-test-result' });
  var sla = jsonEditor('ladm-sla');
  var slaStatus = h('p', { className: 'lead-result', testid: 'ladm-sla-status', attrs: { role: 'status' } });

  function saveRouting() {
    var doc = parsed(routing);
    if (doc === null) return;
    routingStatus.textContent = '';
    leadsApi('PUT', '/routing', doc).then(function (saved) {
      routing.set(saved.document);
      routingStatus.textContent = t('leadAdmin.routing.saved', { version: saved.version });
    }, function (err) { refused(routing, routingStatus, err, ''); });
  }
  function tryRouting() {
    var doc = parsed(routing);
    var lead = parsed(sample);
    if (doc === null || lead === null) return;
    clear(verdict);
    leadsApi('POST', '/routing/test', { lead: lead, document: doc }).then(function (tried) {
      var decision = tried.decision || {};
      var why = decision.rule_id ? t('leadAdmin.test.byRule', { rule: decision.rule_id }) : t('leadAdmin.test.byDefault');
      verdict.appendChild(h('p', { testid: 'ladm-test-team', data: { team: decision.team }, text: t('leadAdmin.test.team', { team: decision.team, why: why }) }));
      (tried.rules || []).forEach(function (r) {
        var checks = (r.checks || []).map(function (c) { return c.text; }).join('; ');
        verdict.appendChild(h('p', { className: 'lrpt-note', data: { rule: r.rule_id, outcome: r.outcome }, text: (r.name || r.rule_id) + ' → ' + r.team + ': ' + (OUTCOME[r.outcome] ? t(OUTCOME[r.outcome]) : r.outcome) + (checks ? ' (' + checks + ')' : '') }));
      });
    }, function (err) {
      var list = (err.body && err.body.errors) || [];
      routing.problems(list.filter(function (p) { return String(p.loc).indexOf('document') === 0; }), 'document.');
      sample.problems(list.filter(function (p) { return String(p.loc).indexOf('lead') === 0; }), 'lead.');
      if (!list.length) verdict.appendChild(h('p', { className: 'form-error', text: leadsError(err) }));
    });
  }
  function saveSla() {
    var body = parsed(sla);
    if (body === null) return;
    delete body.defaults;
    leadsApi('PUT', '/sla-policies', body).then(function (saved) {
      sla.set({ policies: saved.policies });
      slaStatus.textContent = t('leadAdmin.sla.saved');
    }, function (err) { refused(sla, slaStatus, err, ''); });
  }

  [
    section('leadAdmin.routing.title', [
      h('p', { className: 'lrpt-note', i18n: 'leadAdmin.routing.help' }),
      routing.node,
      h('div', { className: 'lead-actions' }, [
        h('button', { className: 'btn btn-primary btn-small', testid: 'ladm-routing-save', i18n: 'leadAdmin.routing.save', attrs: { type: 'button' }, on: { click: saveRouting } }),
      ]),
      routingStatus,
    ]),
    section('leadAdmin.test.title', [
      h('p', { className: 'lrpt-note', i18n: 'leadAdmin.test.help' }),
      sample.node,
      h('button', { className: 'btn btn-small', testid: 'ladm-test', i18n: 'leadAdmin.test.run', attrs: { type: 'button' }, on: { click: tryRouting } }),
      verdict,
    ]),
    section('leadAdmin.sla.title', [
      h('p', { className: 'lrpt-note', i18n: 'leadAdmin.sla.help' }),
      sla.node,
      h('button', { className: 'btn btn-primary btn-small', testid: 'ladm-sla-save', i18n: 'leadAdmin.sla.save', attrs: { type: 'button' }, on: { click: saveSla } }),
      slaStatus,
    ]),
  ].forEach(function (node) { root.appendChild(node); });
  leadsApi('GET', '/routing').then(function (found) { routing.set(found.document); }, function (err) { routing.problems([{ loc: '', msg: leadsError(err) }]); });
  leadsApi('GET', '/sla-policies').then(function (found) { sla.set({ policies: found.policies }); }, function (err) { sla.problems([{ loc: '', msg: leadsError(err) }]); });
}
