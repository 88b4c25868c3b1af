/* The admin's Identity section: the site's identity secrets (the store's server signs a
 * logged-in customer's id with one, docs/identity.md) and whether identified visitors need
 * that signature. A secret is shown once, right after it is made; afterwards only its id, age
 * and last four characters. Two may be valid at once, so a secret can be rotated without a
 * moment when the store's pages carry hashes Beckon refuses. (POST /admin/site/identity.) */
import { api } from './core/api.js';
import { h } from './core/dom.js';
import { on } from './core/events.js';
import { fmt } from './core/format.js';
import { t } from './core/i18n.js';

var MAX_SECRETS = 2;  // chat's MAX_IDENTITY_SECRETS

var state = fresh();

function fresh() {
  // newSecret: the secret just made, in full; kept in this page's memory only until the admin
  // dismisses it, acts again or leaves the section
  return { identity: null, newSecret: null, note: '', error: '', busy: false };
}

function errorText(err) { return (err && (err.detail || err.message)) || String(err); }

function load(rerender) {
  api('GET', '/admin/site').then(function (r) {
    state.identity = r.site.identity;
    rerender();
  }, function (err) { state.error = t('admin.failed', { detail: errorText(err) }); rerender(); });
}

function change(rerender, body, note) {
  state.busy = true;
  state.error = '';
  state.note = '';
  state.newSecret = null;
  rerender();
  return api('POST', '/admin/site/identity', body).then(function (r) {
    state.identity = r.identity;
    state.newSecret = r.identity.new_secret || null;
    state.note = note;
  }, function (err) { state.error = errorText(err); }).then(function () {
    state.busy = false;
    rerender();
  });
}

function secretRow(rerender, secret, index) {
  return h('tr', { testid: 'identity-secret', data: { 'secret-id': secret.secret_id } }, [
    h('td', {}, [h('code', { testid: 'identity-secret-id', text: secret.secret_id })]),
    h('td', { testid: 'identity-secret-created', text: fmt.dateTime(secret.created_at) }),
    h('td', { testid: 'identity-secret-ends', text: '…' + secret.ends }),
    h('td', { className: 'admin-muted', text: index === 0 ? t('identity.newest') : t('identity.older') }),
    h('td', {}, [h('button', {
      className: 'btn btn-danger-ghost',
      testid: 'identity-remove',
      i18n: 'identity.remove',
      attrs: { type: 'button', disabled: state.busy },
      on: { click: function () {
        if (!window.confirm(t('identity.remove_confirm', { id: secret.secret_id }))) return;
        change(rerender, { action: 'remove', secret_id: secret.secret_id }, t('identity.removed'));
      } },
    })]),
  ]);
}

function shownOnce(rerender) {
  var box = h('input', { testid: 'identity-new-secret', attrs: { type: 'text', readonly: true, 'aria-label': t('identity.new_secret') } });
  box.value = state.newSecret;
  return h('div', { className: 'admin-invite-link identity-new', testid: 'identity-new', attrs: { role: 'status' } }, [
    h('p', { i18n: 'identity.shown_once' }),
    box,
    h('div', { className: 'admin-actions' }, [
      h('button', {
        className: 'btn', testid: 'identity-copy', i18n: 'identity.copy', attrs: { type: 'button' },
        on: { click: function () {
          box.select();
          var copied = navigator.clipboard ? navigator.clipboard.writeText(state.newSecret) : Promise.reject(new Error('no clipboard'));
          copied.then(function () { state.note = t('identity.copied'); }, function () { state.note = t('identity.copy_by_hand'); })
            .then(function () { rerender(); });
        } },
      }),
      h('button', {
        className: 'btn', testid: 'identity-dismiss', i18n: 'identity.dismiss', attrs: { type: 'button' },
        on: { click: function () { state.newSecret = null; state.note = ''; rerender(); } },
      }),
    ]),
  ]);
}

export function renderIdentity(rerender) {
  if (state.identity === null && !state.error) load(rerender);
  var identity = state.identity || { verification: false, secrets: [] };
  var secrets = identity.secrets || [];
  var full = secrets.length >= MAX_SECRETS;
  var enforce = h('input', {
    testid: 'identity-enforce',
    attrs: { type: 'checkbox', checked: !!identity.verification, disabled: state.busy || state.identity === null },
    on: { change: function () {
      var wanted = enforce.checked;
      change(rerender, { action: 'enforce', verification: wanted }, wanted ? t('identity.enforced') : t('identity.not_enforced'));
    } },
  });
  // enforcing with no secret: every identified visitor is anonymous (nothing can verify)
  var warning = identity.verification && !secrets.length
    ? h('p', { className: 'admin-note is-bad', testid: 'identity-warning', attrs: { role: 'alert' }, i18n: 'identity.no_secret_enforced' })
    : null;
  return h('section', { className: 'admin-identity', testid: 'admin-identity' }, [
    h('header', { className: 'admin-header' }, [h('h2', { i18n: 'identity.title' })]),
    h('p', { className: 'admin-muted', i18n: 'identity.help' }),
    h('label', { className: 'admin-check' }, [enforce, ' ', h('span', { i18n: 'identity.enforce' })]),
    h('p', { className: 'admin-muted', i18n: identity.verification ? 'identity.enforce_on' : 'identity.enforce_off' }),
    warning,
    h('h3', { i18n: 'identity.secrets' }),
    secrets.length
      ? h('table', { className: 'admin-table', testid: 'identity-secrets' }, [
        h('thead', {}, [h('tr', {}, [
          h('th', { i18n: 'identity.col.id' }),
          h('th', { i18n: 'identity.col.created' }),
          h('th', { i18n: 'identity.col.ends' }),
          h('th', {}),
          h('th', {}),
        ])]),
        h('tbody', {}, secrets.map(function (secret, index) { return secretRow(rerender, secret, index); })),
      ])
      : h('p', { className: 'admin-muted', testid: 'identity-none', i18n: 'identity.none' }),
    state.newSecret ? shownOnce(rerender) : null,
    h('div', { className: 'admin-actions' }, [
      h('button', {
        className: 'btn btn-primary', testid: 'identity-generate', i18n: 'identity.generate',
        attrs: { type: 'button', disabled: state.busy || full || state.identity === null },
        on: { click: function () { change(rerender, { action: 'generate' }, t('identity.generated')); } },
      }),
      full ? h('span', { className: 'admin-muted', testid: 'identity-full', i18n: 'identity.full' }) : null,
    ]),
    h('p', { className: 'admin-muted', i18n: 'identity.rotate' }),
    h('p', { className: 'admin-note', testid: 'identity-note', attrs: { role: 'status' }, text: state.note }),
    state.error ? h('p', { className: 'form-error', testid: 'identity-error', attrs: { role: 'alert' }, text: state.error }) : null,
  ]);
}

// a secret shown once is gone when the admin leaves the section or logs out; the list is
// read again on the next visit (another admin may have rotated meanwhile)
export function forgetIdentity() { state = fresh(); }

on('reset', forgetIdentity);
on('view', function (name) { if (name !== 'admin') forgetIdentity(); });
