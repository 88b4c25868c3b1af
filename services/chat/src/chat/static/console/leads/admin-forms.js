/* What the Leads admin's sections share: a titled section, a labelled field with a slot for
 * the server's problems about it, a status line, checkbox groups, and the server's 422
 * problems put at their fields.
 *
 * A problem's `loc` comes dotted (`teams.0.lead_agent_id`, pydantic's) or with brackets
 * (`teams[0].lead_agent_id`, the use cases'); both name the same slot. A problem goes to the
 * slot of its place or of its nearest parent (`hours.mon.0` → `hours.mon`), else to the
 * section's own slot (loc ""). */
import { clear, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { leadsError } from './api.js';

export function enc(id) { return encodeURIComponent(String(id)); }

export function section(titleKey, children, testid) {
  return h('section', { className: 'ladm-section', testid: testid }, [h('h3', { i18n: titleKey })].concat(children));
}

export function note(key) { return h('p', { className: 'lrpt-note', i18n: key }); }

// a slot for the problems about `loc` (the section's own slot: loc '')
export function errorSlot(loc) {
  return h('div', { className: 'ladm-errors', data: { 'error-for': loc } });
}

// <label>: its text, the control, and the slot for the problems at `loc` (when given)
export function field(labelKey, control, loc) {
  return h('label', { className: 'field leads-field' }, [h('span', { i18n: labelKey }), control, loc == null ? null : errorSlot(loc)]);
}

export function status(testid) {
  return h('p', { className: 'lead-result', testid: testid, attrs: { role: 'status' } });
}

export function say(node, text, bad) {
  node.textContent = text || '';
  node.className = 'lead-result' + (bad ? ' form-error' : '');
}

export function button(testid, key, onClick, primary) {
  return h('button', { className: 'btn btn-small' + (primary ? ' btn-primary' : ''), testid: testid, i18n: key, attrs: { type: 'button' }, on: { click: onClick } });
}

// checkboxes, one per value: {node, get() -> checked values in the given order, set(values)}
export function checks(testid, values, chosen, labelOf) {
  var boxes = values.map(function (value) {
    var box = h('input', { data: { value: value }, attrs: { type: 'checkbox', value: value } });
    box.checked = (chosen || []).indexOf(value) >= 0;
    return box;
  });
  return {
    node: h('span', { className: 'admin-checks', testid: testid }, boxes.map(function (box, i) {
      return h('label', { className: 'admin-check' }, [box, ' ', labelOf ? labelOf(values[i]) : values[i]]);
    })),
    get: function () { return boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }); },
    set: function (list) { boxes.forEach(function (b) { b.checked = (list || []).indexOf(b.value) >= 0; }); },
  };
}

// 'teams[0].lead_agent_id' and 'teams.0.lead_agent_id' → ['teams', '0', 'lead_agent_id']
export function locParts(loc, prefix) {
  var path = String(loc == null ? '' : loc);
  if (prefix && path.indexOf(prefix) === 0) path = path.slice(prefix.length);
  return path.replace(/\[(\d+)\]/g, '.$1').split('.').filter(Boolean);
}

// a refusal in one line (for a status line): its located problems, else its sentence
export function refusalText(err) {
  var list = (err && err.body && err.body.errors) || [];
  if (!list.length) return leadsError(err);
  return list.map(function (p) { return p.loc ? p.loc + ': ' + p.msg : p.msg; }).join('; ');
}

export function clearProblems(root) {
  root.querySelectorAll('[data-error-for]').forEach(clear);
}

// The refusal's problems, each at its field in `root` (see the header); without located
// problems its sentence goes to the section's slot. Returns how many were shown.
export function showProblems(root, err, prefix) {
  clearProblems(root);
  var list = (err && err.body && err.body.errors) || [];
  if (!list.length) list = [{ loc: '', msg: leadsError(err) }];
  list.forEach(function (p) {
    var parts = locParts(p.loc, prefix);
    var slot;
    for (;;) {
      slot = root.querySelector('[data-error-for="' + parts.join('.') + '"]');
      if (slot || !parts.length) break;
      parts.pop();
    }
    if (!slot) return;
    var where = locParts(p.loc, prefix).join('.');
    slot.appendChild(h('p', {
      className: 'form-error', testid: 'ladm-field-error', data: { loc: where },
      text: where && slot.getAttribute('data-error-for') !== where ? t('leadAdmin.problemIn', { loc: where, msg: p.msg }) : p.msg,
    }));
  });
  return list.length;
}
