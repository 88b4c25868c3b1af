/* The E-mail admin's delivery log (GET /v1/admin/email/log?status=&recipient=&before=):
 * newest first, 50 at a time ("Older" asks for those before the last one shown). A row opens
 * the e-mail with each try (GET /v1/admin/email/log/{id}: when, outcome, SMTP code, what the
 * server said) and a Resend button (POST .../resend: the same e-mail as a new entry with its
 * own Message-ID; the suppression list still applies). */
import { clear, h } from '../core/dom.js';
import { fmt } from '../core/format.js';
import { t } from '../core/i18n.js';
import { enc, notifierApi, notifierError } from './api.js';

export var STATUS = {
  scheduled: 'emailAdmin.status.scheduled', pending: 'emailAdmin.status.pending',
  sending: 'emailAdmin.status.sending', sent: 'emailAdmin.status.sent',
  failed: 'emailAdmin.status.failed', suppressed: 'emailAdmin.status.suppressed',
  cancelled: 'emailAdmin.status.cancelled',
};
// the notifier's templates (notifier.domain.contexts.TEMPLATE_NAMES); others show their name
export var TEMPLATE = {
  transcript: 'emailAdmin.template.transcript', offline_receipt: 'emailAdmin.template.offline_receipt',
  offline_to_team: 'emailAdmin.template.offline_to_team', unread_messages: 'emailAdmin.template.unread_messages',
  lead_assigned: 'emailAdmin.template.lead_assigned', lead_sla_warning: 'emailAdmin.template.lead_sla_warning',
  lead_escalated: 'emailAdmin.template.lead_escalated', webhook_disabled: 'emailAdmin.template.webhook_disabled',
};
var OUTCOME = { sent: 'emailAdmin.try.sent', retry: 'emailAdmin.try.retry', failed: 'emailAdmin.try.failed' };
var PAGE = 50;

export function label(table, value) { return table[value] ? t(table[value]) : String(value == null ? '' : value); }

var filters = { status: '', recipient: '' };

export function build(root) {
  var emails = [];
  var selected = null;
  var loaded = false;
  var seq = 0;
  var error = h('p', { className: 'form-error', testid: 'email-log-error', attrs: { role: 'alert', hidden: true } });
  var list = h('div', { className: 'email-list-wrap' });
  var detail = h('aside', { className: 'email-detail', testid: 'email-detail', attrs: { hidden: true } });
  var more = h('button', {
    className: 'btn btn-small', testid: 'email-log-older', i18n: 'emailAdmin.log.older', attrs: { type: 'button', hidden: true },
    on: { click: function () { load(true); } },
  });

  var status = h('select', { testid: 'email-log-status', on: { change: function () { filters.status = status.value; load(false); } } },
    [h('option', { attrs: { value: '' }, i18n: 'emailAdmin.log.any' })].concat(Object.keys(STATUS).map(function (s) {
      return h('option', { attrs: { value: s }, text: t(STATUS[s]) });
    })));
  status.value = filters.status;
  var recipient = h('input', {
    testid: 'email-log-recipient', attrs: { type: 'search', maxlength: 254, placeholder: t('emailAdmin.log.recipientHint'), value: filters.recipient },
  });
  var form = h('form', {
    className: 'email-bar',
    on: { submit: function (e) { e.preventDefault(); filters.recipient = recipient.value.trim(); load(false); } },
  }, [
    h('label', { className: 'field email-field' }, [h('span', { i18n: 'emailAdmin.log.status' }), status]),
    h('label', { className: 'field email-field' }, [h('span', { i18n: 'emailAdmin.log.recipient' }), recipient]),
    h('button', { className: 'btn btn-small', testid: 'email-log-refresh', i18n: 'email.refresh', attrs: { type: 'submit' } }),
  ]);
  root.appendChild(h('div', { className: 'email-section' }, [form, error, h('div', { className: 'email-body' }, [h('div', { className: 'email-list-wrap' }, [list, more]), detail])]));

  function query(older) {
    var parts = ['limit=' + PAGE];
    if (filters.status) parts.push('status=' + enc(filters.status));
    if (filters.recipient) parts.push('recipient=' + enc(filters.recipient));
    if (older && emails.length) parts.push('before=' + enc(emails[emails.length - 1].created_at));
    return '?' + parts.join('&');
  }

  function load(older) {
    var mine = ++seq;
    return notifierApi('GET', '/admin/email/log' + query(older)).then(function (page) {
      if (mine !== seq) return;
      loaded = true;
      var found = (page && page.emails) || [];
      emails = older ? emails.concat(found) : found;
      more.hidden = found.length < PAGE;
      error.hidden = true;
      renderList();
    }, function (err) {
      if (mine !== seq) return;
      loaded = true;
      error.textContent = notifierError(err);
      error.hidden = false;
      if (!older) { emails = []; renderList(); }
    });
  }

  function renderList() {
    clear(list);
    if (!loaded) { list.appendChild(h('p', { className: 'list-empty', i18n: 'common.loading' })); return; }
    if (!emails.length) {
      list.appendChild(h('p', { className: 'list-empty', testid: 'email-log-empty', i18n: 'emailAdmin.log.empty' }));
      return;
    }
    var head = h('tr', {}, ['emailAdmin.col.created', 'emailAdmin.col.template', 'emailAdmin.col.recipient', 'emailAdmin.col.status', 'emailAdmin.col.attempts', 'emailAdmin.col.subject'].map(function (key) {
      return h('th', { i18n: key, attrs: { scope: 'col' } });
    }));
    var rows = emails.map(function (email) {
      function open() { select(email.email_id); }
      return h('tr', {
        className: 'email-row' + (email.email_id === selected ? ' is-active' : ''),
        testid: 'email-log-row',
        data: { id: email.email_id, status: email.status, template: email.template },
        attrs: { tabindex: 0 },
        on: { click: open, keydown: function (e) { if (e.key === 'Enter') open(); } },
      }, [
        h('td', {}, [h('time', { text: fmt.dateTime(email.created_at), attrs: { datetime: email.created_at } })]),
        h('td', { text: label(TEMPLATE, email.template) }),
        h('td', { className: 'email-recipient', testid: 'email-log-recipient-cell', text: email.recipient }),
        h('td', {}, [statusBadge(email)]),
        h('td', { className: 'num', text: String(email.attempts || 0) }),
        h('td', { className: 'email-subject', text: email.subject || '' }),
      ]);
    });
    list.appendChild(h('table', { className: 'email-table', testid: 'email-log' }, [h('thead', {}, [head]), h('tbody', {}, rows)]));
  }

  function statusBadge(email) {
    var text = label(STATUS, email.status);
    if (email.status === 'pending' && email.attempts > 0) text = t('emailAdmin.status.retrying', { n: email.attempts });
    return h('span', { className: 'badge email-status', testid: 'email-status', data: { status: email.status }, text: text, attrs: { title: email.reason || '' } });
  }

  function select(id) {
    selected = id;
    renderList();
    detail.hidden = false;
    clear(detail);
    detail.appendChild(h('p', { className: 'list-empty', i18n: 'common.loading' }));
    notifierApi('GET', '/admin/email/log/' + enc(id)).then(function (email) {
      if (selected === id) renderDetail(email);
    }, function (err) {
      if (selected !== id) return;
      clear(detail);
      detail.appendChild(h('p', { className: 'form-error', text: notifierError(err) }));
    });
  }

  function renderDetail(email) {
    clear(detail);
    var facts = [
      ['emailAdmin.col.template', label(TEMPLATE, email.template)],
      ['emailAdmin.col.recipient', email.recipient],
      ['emailAdmin.col.language', email.language],
      ['emailAdmin.col.status', statusBadge(email)],
      ['emailAdmin.col.reason', email.reason],
      ['emailAdmin.col.subject', email.subject],
      ['emailAdmin.col.created', fmt.dateTime(email.created_at)],
      ['emailAdmin.col.sent', email.sent_at ? fmt.dateTime(email.sent_at) : null],
      ['emailAdmin.col.messageId', email.message_id],
    ].filter(function (f) { return f[1] != null && f[1] !== ''; });
    detail.appendChild(h('h3', { className: 'email-detail-title', text: email.subject || label(TEMPLATE, email.template) }));
    detail.appendChild(h('dl', { className: 'email-facts' }, facts.reduce(function (acc, f) {
      acc.push(h('dt', { i18n: f[0] }));
      acc.push(h('dd', {}, [f[1]]));
      return acc;
    }, [])));
    var tries = (email.tries || []).map(function (x) {
      return h('li', { testid: 'email-try', data: { outcome: x.outcome } }, [t('emailAdmin.try.line', {
        n: x.attempt, when: fmt.dateTime(x.at), outcome: label(OUTCOME, x.outcome),
        code: x.smtp_code != null ? x.smtp_code : '–', detail: x.detail || '',
      })]);
    });
    detail.appendChild(h('section', { className: 'email-tries' }, [
      h('h4', { i18n: 'emailAdmin.tries' }),
      tries.length ? h('ol', {}, tries) : h('p', { className: 'list-empty', i18n: 'emailAdmin.noTries' }),
    ]));
    var result = h('p', { className: 'email-result', testid: 'email-resend-result', attrs: { role: 'status' } });
    var resend = h('button', {
      className: 'btn btn-primary btn-small', testid: 'email-resend', i18n: 'emailAdmin.resend', attrs: { type: 'button' },
      on: { click: function () {
        resend.disabled = true;
        notifierApi('POST', '/admin/email/log/' + enc(email.email_id) + '/resend').then(function (answer) {
          result.className = 'email-result';
          result.textContent = t('emailAdmin.resent', { status: label(STATUS, answer.status) });
          load(false);
        }, function (err) {
          result.className = 'email-result form-error';
          result.textContent = notifierError(err);
        }).then(function () { resend.disabled = false; });
      } },
    });
    detail.appendChild(h('div', { className: 'email-actions' }, [resend, result]));
  }

  renderList();
  load(false);
}
