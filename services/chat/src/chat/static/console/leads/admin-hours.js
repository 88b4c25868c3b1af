/* The Leads admin's business hours section (GET/PUT /v1/leads/business-hours): the site's
 * timezone, its weekly hours (per day "09:00-17:00, 18:00-20:00"; empty: closed that day) or
 * "open around the clock" (hours null), and holidays (closed all day; they need hours).
 * First-contact SLA time counts only while the site is open; deadlines planned from then on
 * use the new hours. The server's problems are shown at their field (`hours.mon.0`,
 * `timezone`, `holidays.1`). */
import { h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { leadsApi } from './api.js';
import { button, clearProblems, errorSlot, field, note, say, section, showProblems, status } from './admin-forms.js';

export var WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

// "09:00-17:00, 18:00-20:00" → ['09:00-17:00', '18:00-20:00']
export function ranges(text) {
  return String(text || '').split(/[,;\n]/).map(function (x) { return x.trim(); }).filter(Boolean);
}

// what the form says, as the API's body
export function hoursBody(timezone, always, days, holidays) {
  var hours = null;
  if (!always) {
    hours = {};
    WEEKDAYS.forEach(function (day) { hours[day] = ranges(days[day]); });
  }
  return { timezone: String(timezone || '').trim() || 'UTC', hours: hours, holidays: ranges(holidays) };
}

function zones() {
  try { return Intl.supportedValuesOf('timeZone'); } catch (e) { return []; }
}

export function build(root) {
  var timezone = h('input', { testid: 'ladm-hours-timezone', attrs: { type: 'text', list: 'ladm-zones', autocomplete: 'off', placeholder: 'Europe/Helsinki' } });
  var zoneList = h('datalist', { attrs: { id: 'ladm-zones' } }, zones().map(function (z) { return h('option', { attrs: { value: z } }); }));
  var always = h('input', { testid: 'ladm-hours-always', attrs: { type: 'checkbox' } });
  var dayInputs = {};
  var days = h('div', { className: 'admin-days', testid: 'ladm-hours-days' }, WEEKDAYS.map(function (day) {
    var node = h('input', { className: 'admin-hours', testid: 'ladm-hours-' + day, attrs: { type: 'text', autocomplete: 'off', placeholder: t('site.hours_none') } });
    dayInputs[day] = node;
    return field('day.' + day, node, 'hours.' + day);
  }));
  var holidays = h('textarea', { testid: 'ladm-hours-holidays', attrs: { rows: 3, placeholder: '2025-12-24\n2025-12-25' } });
  var result = status('ladm-hours-status');
  function sync() {
    Object.keys(dayInputs).forEach(function (day) { dayInputs[day].disabled = always.checked; });
    holidays.disabled = always.checked;
  }
  always.addEventListener('change', sync);

  function show(found) {
    timezone.value = found.timezone || 'UTC';
    always.checked = found.hours == null;
    WEEKDAYS.forEach(function (day) { dayInputs[day].value = ((found.hours || {})[day] || []).join(', '); });
    holidays.value = (found.holidays || []).join('\n');
    sync();
  }

  function save() {
    clearProblems(root);
    say(result, '');
    var typed = {};
    WEEKDAYS.forEach(function (day) { typed[day] = dayInputs[day].value; });
    leadsApi('PUT', '/business-hours', hoursBody(timezone.value, always.checked, typed, holidays.value)).then(function (saved) {
      show(saved);
      say(result, t('leadAdmin.saved'));
    }, function (err) { showProblems(root, err); });
  }

  root.appendChild(section('leadAdmin.hours.title', [
    note('leadAdmin.hours.help'),
    field('leadAdmin.hours.timezone', timezone, 'timezone'),
    zoneList,
    h('label', { className: 'admin-check' }, [always, ' ', h('span', { i18n: 'leadAdmin.hours.always' })]),
    days,
    errorSlot('hours'),
    field('leadAdmin.hours.holidays', holidays, 'holidays'),
    h('div', { className: 'lead-actions' }, [button('ladm-hours-save', 'leadAdmin.hours.save', save, true)]),
    errorSlot(''),
    result,
  ], 'ladm-hours-section'));
  leadsApi('GET', '/business-hours').then(show, function (err) { showProblems(root, err); });
}
