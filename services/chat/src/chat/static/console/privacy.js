/* The admin's Privacy section: a visitor's data exported or erased on request (by visitor id
 * or e-mail), the requests made, and how long the site keeps activity and transcripts
 * (chat's /v1/privacy API, docs/privacy.md). */
import { h } from './core/dom.js';
import { fmt } from './core/format.js';
import { i18n, plural, t } from './core/i18n.js';

// `subjects`: what the admin typed, kept across renders (the first load re-renders the section)
var state = { requests: null, retention: null, subjects: '', note: '', error: '', busy: false };
var POLL_MS = 2000; // while a request is in progress, its row is refreshed this often
var poll = null;

function call(method, path, body) {
  var init = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch('/v1/privacy' + path, init).then(function (res) {
    return res.text().then(function (raw) {
      var data = null;
      try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
      if (!res.ok) throw new Error((data && data.detail) || res.statusText);
      return data;
    });
  });
}

// "v-123, anna@example.org" → {visitor_ids: [...], emails: [...]}
export function subjectsOf(text) {
  var parts = String(text || '').split(/[\s,;]+/).filter(Boolean);
  return {
    visitor_ids: parts.filter(function (p) { return p.indexOf('@') < 0; }),
    emails: parts.filter(function (p) { return p.indexOf('@') >= 0; }),
  };
}

function load(rerender) {
  Promise.all([call('GET', '/requests'), call('GET', '/retention')]).then(function (got) {
    state.requests = got[0].requests;
    state.retention = got[1];
    rerender();
    follow(rerender);
  }).catch(function (e) { state.error = t('admin.failed', { detail: e.message }); rerender(); });
}

// A request in progress is asked about again until chat's part is done (only while the
// section is on screen).
function follow(rerender) {
  clearTimeout(poll);
  var pending = (state.requests || []).some(function (r) { return !r.erased_at; });
  if (!pending) return;
  poll = setTimeout(function () {
    var shown = document.querySelector('[data-testid="privacy-requests"]');
    if (!shown) return;
    call('GET', '/requests').then(function (got) {
      state.requests = got.requests;
      // only the table: what the admin is typing elsewhere on the screen stays as it is
      shown.replaceWith(requestsTable());
      follow(rerender);
    }).catch(function () { follow(rerender); });
  }, POLL_MS);
}

// chat's counts of an erased request: "3 messages · 1 conversation"
export function countsText(counts) {
  return Object.keys(counts || {}).sort().filter(function (kind) { return counts[kind] > 0; })
    .map(function (kind) {
      var key = 'privacy.count.' + kind;
      return i18n.has(key + '.other') ? plural(key, counts[kind]) : kind + ' ' + counts[kind];
    }).join(' · ');
}

function exportedNote(data) {
  var missing = (data && data.missing) || [];
  return missing.length ? t('privacy.exported_missing', { services: missing.join(', ') }) : t('privacy.exported');
}

function act(rerender, run) {
  state.busy = true;
  state.error = '';
  state.note = '';
  rerender();
  run().catch(function (e) { state.error = e.message; }).then(function () {
    state.busy = false;
    load(rerender);
  });
}

function download(data) {
  var blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
  var link = h('a', { attrs: { href: URL.createObjectURL(blob), download: 'beckon-export.json' } });
  document.body.appendChild(link);
  link.click();
  link.remove();
}

function days(value) {
  var n = parseInt(value, 10);
  return isFinite(n) && n > 0 ? n : null;
}

function requestsTable() {
  return h('table', { className: 'admin-table', testid: 'privacy-requests' }, [
    h('tr', {}, [
      h('th', { i18n: 'privacy.col_requested' }),
      h('th', { i18n: 'privacy.col_by' }),
      h('th', { i18n: 'privacy.col_status' }),
      h('th', { i18n: 'privacy.col_counts' }),
    ]),
  ].concat((state.requests || []).map(function (r) {
    return h('tr', { testid: 'privacy-request', data: { 'request-id': r.request_id, state: r.erased_at ? 'erased' : 'pending' } }, [
      h('td', { text: fmt.dateTime(r.requested_at) }),
      h('td', { text: r.requested_by }),
      h('td', { testid: 'privacy-request-status', text: r.erased_at ? t('privacy.erased_at', { at: fmt.dateTime(r.erased_at) }) : t('privacy.pending') }),
      h('td', { testid: 'privacy-request-counts', text: countsText(r.counts) }),
    ]);
  })));
}

export function renderPrivacy(rerender) {
  if (state.requests === null && !state.error) load(rerender);
  var who = h('input', {
    testid: 'privacy-subjects',
    attrs: { type: 'text', autocomplete: 'off', value: state.subjects, 'aria-label': t('privacy.subjects'), placeholder: t('privacy.subjects_hint') },
    on: { input: function () { state.subjects = who.value; } },
  });
  function subjects() { return subjectsOf(state.subjects); }
  var retention = state.retention || {};
  var activity = h('input', { testid: 'privacy-activity-days', attrs: { type: 'number', min: 1, max: 3650, value: retention.activity_days } });
  var transcripts = h('input', { testid: 'privacy-transcript-days', attrs: { type: 'number', min: 1, max: 3650, value: retention.transcript_days } });
  return h('section', { className: 'admin-privacy', testid: 'admin-privacy' }, [
    h('h2', { i18n: 'privacy.title' }),
    h('p', { className: 'admin-muted', i18n: 'privacy.help' }),
    who,
    h('div', { className: 'admin-actions' }, [
      h('button', {
        className: 'btn', testid: 'privacy-export', i18n: 'privacy.export', attrs: { type: 'button', disabled: state.busy },
        on: { click: function () {
          act(rerender, function () {
            return call('POST', '/export', subjects()).then(function (data) { download(data); state.note = exportedNote(data); });
          });
        } },
      }),
      h('button', {
        className: 'btn btn-danger', testid: 'privacy-erase', i18n: 'privacy.erase', attrs: { type: 'button', disabled: state.busy },
        on: { click: function () {
          if (!window.confirm(t('privacy.confirm', { who: who.value }))) return;
          act(rerender, function () {
            return call('POST', '/erasure', subjects()).then(function (data) {
              state.note = t('privacy.requested', { count: data.visitors });
            });
          });
        } },
      }),
    ]),
    h('p', { className: 'admin-note', testid: 'privacy-note', attrs: { role: 'status' }, text: state.note }),
    state.error ? h('p', { className: 'form-error', testid: 'privacy-error', attrs: { role: 'alert' }, text: state.error }) : null,
    h('h3', { i18n: 'privacy.requests' }),
    requestsTable(),
    h('h3', { i18n: 'privacy.retention' }),
    h('label', {}, [h('span', { i18n: 'privacy.activity_days' }), activity]),
    h('label', {}, [h('span', { i18n: 'privacy.transcript_days' }), transcripts]),
    h('button', {
      className: 'btn', testid: 'privacy-retention-save', i18n: 'privacy.save', attrs: { type: 'button', disabled: state.busy },
      on: { click: function () {
        act(rerender, function () {
          return call('PUT', '/retention', { activity_days: days(activity.value), transcript_days: days(transcripts.value) })
            .then(function () { state.note = t('admin.saved'); });
        });
      } },
    }),
  ]);
}
