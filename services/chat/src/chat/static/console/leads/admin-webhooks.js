/* The Leads admin's webhooks section (/v1/leads/webhooks): the site's CRM endpoints.
 *
 * - Add one (URL, description, the `leads.events` types it subscribes to): the answer holds
 *   its signing secret (`whsec_...`), shown here once, with a copy button; the leads service
 *   never shows it again. Rotating makes a new one, shown the same way (the old one keeps
 *   signing for the overlap, so receivers can switch without losing a message).
 * - Edit the URL, description, event types, enabled; the server's problems at their fields
 *   (`url` for an address the SSRF guard refuses, `event_types.1` for an unknown type).
 * - Send a `webhook.test` message now and see what the receiver answered.
 * - The delivery log, newest first: status, attempts, the last response code, the next retry;
 *   replay a delivery (the same webhook-id and body go out again; not a test message).
 */
import { clear, h } from '../core/dom.js';
import { fmt } from '../core/format.js';
import { t } from '../core/i18n.js';
import { leadsApi } from './api.js';
import { button, checks, clearProblems, enc, errorSlot, field, note, refusalText, say, section, showProblems, status } from './admin-forms.js';

var DELIVERY = {
  pending: 'leadAdmin.hooks.delivery.pending', delivered: 'leadAdmin.hooks.delivery.delivered',
  failed: 'leadAdmin.hooks.delivery.failed', cancelled: 'leadAdmin.hooks.delivery.cancelled',
};
// why an endpoint is disabled (services/leads: domain/webhooks.py DisableReason, service.py ADMIN_DISABLED)
var DISABLED = {
  gone: 'leadAdmin.hooks.disabled.gone', failing: 'leadAdmin.hooks.disabled.failing',
  'disabled by an admin': 'leadAdmin.hooks.disabled.admin',
};
var LOG_PAGE = 20;

// a secret the service just made: {endpoint_id, secret}; shown until dismissed, replaced, or
// the section is left (admin.js calls forget)
var revealed = null;

export function forget() { revealed = null; }

function label(table, value) { return table[value] ? t(table[value]) : String(value == null ? '' : value); }
function hookPath(endpoint) { return '/webhooks/' + enc(endpoint.endpoint_id); }

export function build(root) {
  var types = [];
  var list = h('div', { className: 'ladm-hooks', testid: 'ladm-hooks' }, [h('p', { className: 'list-empty', i18n: 'common.loading' })]);
  var adding = h('div', { className: 'ladm-hook-new', attrs: { hidden: true } });
  var top = h('div', {}, [errorSlot('')]);

  function load() {
    return leadsApi('GET', '/webhooks').then(function (found) {
      types = found.event_types || [];
      clear(list);
      if (!found.endpoints.length) list.appendChild(h('p', { className: 'list-empty', testid: 'ladm-hooks-empty', i18n: 'leadAdmin.hooks.empty' }));
      found.endpoints.forEach(function (endpoint) { list.appendChild(card(endpoint, types, load)); });
    }, function (err) { clear(list); showProblems(top, err); });
  }

  function openNew() {
    // the event types come with the list: asked again if it has not answered (yet)
    (types.length ? Promise.resolve() : load()).then(showNew);
  }

  function showNew() {
    clear(adding);
    adding.hidden = false;
    adding.appendChild(endpointForm('ladm-hook-new', { url: '', description: '', event_types: [] }, types, false, function (body, form) {
      return leadsApi('POST', '/webhooks', body).then(function (made) {
        revealed = { endpoint_id: made.endpoint_id, secret: made.secret };
        adding.hidden = true;
        clear(adding);
        return load();
      }, function (err) { showProblems(form, err); });
    }, function () { adding.hidden = true; clear(adding); }));
  }

  root.appendChild(section('leadAdmin.hooks.title', [
    note('leadAdmin.hooks.help'),
    top,
    h('div', { className: 'lead-actions' }, [button('ladm-hook-add', 'leadAdmin.hooks.add', openNew, true)]),
    adding,
    list,
  ], 'ladm-hooks-section'));
  load();
}

// the form of a new endpoint (enabled: false) or of an existing one
function endpointForm(testid, values, types, withEnabled, submit, cancel) {
  var url = h('input', { testid: 'ladm-hook-url', attrs: { type: 'url', autocomplete: 'off', placeholder: 'https://crm.example.com/hooks/beckon', size: 50 } });
  url.value = values.url || '';
  var description = h('input', { testid: 'ladm-hook-description', attrs: { type: 'text', maxlength: 500, size: 50 } });
  description.value = values.description || '';
  var events = checks('ladm-hook-events', types, values.event_types);
  var enabled = h('input', { testid: 'ladm-hook-enabled', attrs: { type: 'checkbox' } });
  enabled.checked = values.enabled !== false;
  var saving = h('button', { className: 'btn btn-primary btn-small', testid: 'ladm-hook-save', i18n: 'leadAdmin.hooks.save', attrs: { type: 'submit' } });
  var form = h('form', { className: 'ladm-hook-form', testid: testid, attrs: { novalidate: true } }, [
    field('leadAdmin.hooks.url', url, 'url'),
    field('leadAdmin.hooks.description', description, 'description'),
    h('div', { className: 'field leads-field' }, [
      h('span', { i18n: 'leadAdmin.hooks.events' }), events.node,
      h('span', { className: 'lead-actions' }, [
        button('ladm-hook-events-all', 'leadAdmin.hooks.eventsAll', function () { events.set(types); }),
        button('ladm-hook-events-none', 'leadAdmin.hooks.eventsNone', function () { events.set([]); }),
      ]),
      errorSlot('event_types'),
    ]),
    withEnabled ? h('label', { className: 'admin-check' }, [enabled, ' ', h('span', { i18n: 'leadAdmin.hooks.enabled' })]) : null,
    withEnabled ? errorSlot('enabled') : null,
    h('div', { className: 'lead-actions' }, [saving, button('ladm-hook-cancel', 'common.cancel', cancel)]),
    errorSlot(''),
  ]);
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    clearProblems(form);
    var body = { url: url.value.trim(), event_types: events.get(), description: description.value.trim() };
    if (withEnabled) body.enabled = enabled.checked;
    saving.disabled = true;
    submit(body, form).then(function () { saving.disabled = false; });
  });
  return form;
}

// a secret shown once: the text, a copy button, and the warning that it won't be seen again
function secretBox(secret, onDone) {
  var value = h('input', { className: 'ladm-secret', testid: 'ladm-hook-secret', attrs: { type: 'text', readonly: true, size: 60, 'aria-label': t('leadAdmin.hooks.secret') } });
  value.value = secret;
  var copied = status('ladm-hook-secret-copied');
  function copy() {
    value.select();
    var done = function () { say(copied, t('leadAdmin.hooks.copied')); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(secret).then(done, function () { say(copied, t('leadAdmin.hooks.copyByHand'), true); });
    } else {
      say(copied, t('leadAdmin.hooks.copyByHand'), true);
    }
  }
  return h('div', { className: 'ladm-secret-box', testid: 'ladm-hook-secret-box', attrs: { role: 'alert' } }, [
    h('strong', { i18n: 'leadAdmin.hooks.secretOnce' }),
    h('div', { className: 'lead-actions' }, [value, button('ladm-hook-secret-copy', 'leadAdmin.hooks.copy', copy), button('ladm-hook-secret-done', 'leadAdmin.hooks.secretDone', onDone)]),
    copied,
  ]);
}

function card(endpoint, types, reload) {
  var node = h('article', { className: 'ladm-hook', testid: 'ladm-hook', data: { 'endpoint-id': endpoint.endpoint_id, enabled: endpoint.enabled ? 'true' : 'false' } });
  var panel = h('div', {});      // the edit form or the rotation's question
  var result = status('ladm-hook-result');
  var log = deliveryLog(endpoint);
  var facts = [
    [t('leadAdmin.hooks.events'), endpoint.event_types.join(', ')],
    endpoint.failing_since ? [t('leadAdmin.hooks.failingSince'), fmt.dateTime(endpoint.failing_since)] : null,
    endpoint.previous_secret_until ? [t('leadAdmin.hooks.previousUntil'), fmt.dateTime(endpoint.previous_secret_until)] : null,
  ].filter(Boolean);
  var state = endpoint.enabled
    ? h('span', { className: 'badge badge-open', testid: 'ladm-hook-state', i18n: 'leadAdmin.hooks.on' })
    : h('span', { className: 'badge badge-closed', testid: 'ladm-hook-state', text: t('leadAdmin.hooks.off', { reason: label(DISABLED, endpoint.disabled_reason || '') }) });

  function edit() {
    clear(panel);
    panel.appendChild(endpointForm('ladm-hook-edit', endpoint, types, true, function (body, form) {
      return leadsApi('PATCH', hookPath(endpoint), body).then(reload, function (err) { showProblems(form, err); });
    }, function () { clear(panel); }));
  }
  function rotate() {
    clear(panel);
    var overlap = h('input', { testid: 'ladm-hook-overlap', attrs: { type: 'number', min: 0, max: 168, step: 'any', size: 4 } });
    overlap.value = '24';
    var ask = h('div', { className: 'ladm-hook-form', testid: 'ladm-hook-rotate-form' }, [
      note('leadAdmin.hooks.rotateHelp'),
      field('leadAdmin.hooks.overlap', overlap, 'overlap_hours'),
      h('div', { className: 'lead-actions' }, [
        button('ladm-hook-rotate-go', 'leadAdmin.hooks.rotateGo', function () {
          clearProblems(ask);
          var hours = overlap.value.trim() === '' ? 24 : Number(overlap.value);
          leadsApi('POST', hookPath(endpoint) + '/rotate', { overlap_hours: hours }).then(function (made) {
            revealed = { endpoint_id: made.endpoint_id, secret: made.secret };
            reload();
          }, function (err) { showProblems(ask, err); });
        }, true),
        button('ladm-hook-cancel', 'common.cancel', function () { clear(panel); }),
      ]),
      errorSlot(''),
    ]);
    panel.appendChild(ask);
  }
  function sendTest(e) {
    var sending = e.target;
    sending.disabled = true;
    say(result, t('leadAdmin.hooks.testing'));
    leadsApi('POST', hookPath(endpoint) + '/test').then(function (sent) {
      sending.disabled = false;
      result.setAttribute('data-delivered', sent.delivered ? 'true' : 'false');
      var vars = { status: sent.status == null ? t('common.none') : sent.status, ms: sent.duration_ms, error: sent.error || '', id: sent.message_id };
      say(result, t(sent.delivered ? 'leadAdmin.hooks.testDelivered' : 'leadAdmin.hooks.testFailed', vars), !sent.delivered);
      log.refresh();
    }, function (err) {
      sending.disabled = false;
      result.removeAttribute('data-delivered');
      say(result, refusalText(err), true);
    });
  }
  var removing = button('ladm-hook-delete', 'leadAdmin.hooks.delete', function () {
    if (removing.getAttribute('data-armed') !== 'true') {
      removing.setAttribute('data-armed', 'true');
      removing.textContent = t('leadAdmin.hooks.deleteConfirm');
      return;
    }
    leadsApi('DELETE', hookPath(endpoint)).then(reload, function (err) { say(result, refusalText(err), true); });
  });

  node.appendChild(h('header', { className: 'ladm-hook-head' }, [
    h('code', { className: 'ladm-hook-url', testid: 'ladm-hook-url-text', text: endpoint.url }), ' ', state,
  ]));
  if (endpoint.description) node.appendChild(h('p', { className: 'lrpt-note', text: endpoint.description }));
  node.appendChild(h('dl', { className: 'lead-facts' }, facts.reduce(function (acc, f) {
    acc.push(h('dt', { text: f[0] }));
    acc.push(h('dd', { text: f[1] }));
    return acc;
  }, [])));
  if (revealed && revealed.endpoint_id === endpoint.endpoint_id) {
    node.appendChild(secretBox(revealed.secret, function () { revealed = null; reload(); }));
  }
  node.appendChild(h('div', { className: 'lead-actions' }, [
    button('ladm-hook-edit-open', 'leadAdmin.hooks.edit', edit),
    button('ladm-hook-rotate', 'leadAdmin.hooks.rotate', rotate),
    button('ladm-hook-test', 'leadAdmin.hooks.test', sendTest),
    button('ladm-hook-log-open', 'leadAdmin.hooks.log', log.toggle),
    removing,
  ]));
  node.appendChild(panel);
  node.appendChild(result);
  node.appendChild(log.node);
  return node;
}

// ---------------------------------------------------------------- the delivery log

// {node, open(), toggle()}: an endpoint's delivery log, newest first, a status filter, and
// older pages appended below
function deliveryLog(endpoint) {
  var node = h('div', { className: 'ladm-hook-log-box', testid: 'ladm-hook-log-box', attrs: { hidden: true } });
  var filter = h('select', { testid: 'ladm-hook-log-status', on: { change: function () { load(); } } },
    [h('option', { attrs: { value: '' }, i18n: 'leadAdmin.hooks.logAll' })].concat(Object.keys(DELIVERY).map(function (s) {
      return h('option', { attrs: { value: s }, i18n: DELIVERY[s] });
    })));
  var result = status('ladm-hook-log-result');
  var body = h('div', {});
  var shown = [];
  node.appendChild(h('div', { className: 'lrpt-bar' }, [
    h('h4', { className: 'leads-title', i18n: 'leadAdmin.hooks.log' }),
    field('leadAdmin.hooks.logStatus', filter),
    button('ladm-hook-log-refresh', 'leadAdmin.hooks.refresh', function () { load(); }),
  ]));
  node.appendChild(body);
  node.appendChild(result);

  function load(before) {
    var query = '?limit=' + LOG_PAGE + (filter.value ? '&status=' + enc(filter.value) : '') + (before ? '&before=' + enc(before) : '');
    return leadsApi('GET', hookPath(endpoint) + '/deliveries' + query).then(function (page) {
      shown = (before ? shown : []).concat(page.deliveries || []);
      render(page.next_before);
    }, function (err) { say(result, refusalText(err), true); });
  }

  function render(nextBefore) {
    clear(body);
    if (!shown.length) {
      body.appendChild(h('p', { className: 'list-empty', testid: 'ladm-hook-log-empty', i18n: 'leadAdmin.hooks.logEmpty' }));
      return;
    }
    var head = h('tr', {}, ['leadAdmin.hooks.col.created', 'leadAdmin.hooks.col.event', 'leadAdmin.hooks.col.id', 'leadAdmin.hooks.col.status', 'leadAdmin.hooks.col.attempts', 'leadAdmin.hooks.col.response', 'leadAdmin.hooks.col.next', 'leadAdmin.hooks.col.error', ''].map(function (key) {
      return h('th', { i18n: key || null, attrs: { scope: 'col' } });
    }));
    body.appendChild(h('table', { className: 'lrpt-table', testid: 'ladm-hook-log' }, [h('thead', {}, [head]), h('tbody', {}, shown.map(row))]));
    if (nextBefore) body.appendChild(button('ladm-hook-log-more', 'leadAdmin.hooks.older', function () { load(nextBefore); }));
  }

  function row(d) {
    var attempts = (d.attempt_log || []).map(function (a) {
      return h('li', { text: t('leadAdmin.hooks.attempt', {
        n: a.attempt, when: fmt.dateTime(a.started_at), status: a.status == null ? t('common.none') : a.status,
        ms: a.duration_ms, error: a.error || '',
      }) });
    });
    // a test message is not replayed (the service refuses it): send a new test instead
    var replay = d.event_type === 'webhook.test' ? null : button('ladm-delivery-replay', 'leadAdmin.hooks.replay', function (e) {
      e.target.disabled = true;
      leadsApi('POST', hookPath(endpoint) + '/deliveries/' + enc(d.delivery_id) + '/replay').then(function () {
        say(result, t('leadAdmin.hooks.replayed', { id: d.message_id }));
        load();
      }, function (err) {
        e.target.disabled = false;
        say(result, refusalText(err), true);
      });
    });
    function cell(col, text) { return h('td', { data: { col: col }, text: text }); }
    return h('tr', { testid: 'ladm-delivery', data: { 'delivery-id': d.delivery_id, 'message-id': d.message_id, status: d.status, 'event-type': d.event_type } }, [
      cell('created', fmt.dateTime(d.created_at)),
      cell('event', d.event_type),
      h('td', { data: { col: 'id' } }, [h('code', { text: d.message_id })]),
      h('td', { data: { col: 'status' } }, [h('span', { className: 'badge ladm-delivery-status', data: { status: d.status }, text: label(DELIVERY, d.status) })]),
      cell('attempts', String(d.attempts)),
      cell('response', d.last_status == null ? t('common.none') : String(d.last_status)),
      cell('next', d.next_attempt_at ? fmt.dateTime(d.next_attempt_at) : t('common.none')),
      h('td', { data: { col: 'error' } }, [
        d.last_error || '',
        attempts.length ? h('details', {}, [h('summary', { i18n: 'leadAdmin.hooks.attempts' }), h('ol', {}, attempts)]) : null,
      ]),
      h('td', {}, [replay]),
    ]);
  }

  return {
    node: node,
    refresh: function () { if (!node.hidden) load(); },
    toggle: function () { node.hidden = !node.hidden; if (!node.hidden) load(); },
  };
}
