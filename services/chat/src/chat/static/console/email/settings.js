/* The E-mail admin's settings (GET/PUT /v1/admin/email/settings), per site: the From name and
 * address, the reply domain (its MX must reach the notifier's inbound endpoint), the team
 * inboxes that get offline messages (one box per team, `*` for any team without its own),
 * how long an answer may stay unseen before it goes out by e-mail, transcripts on or off.
 * Empty fields take the service's defaults (shown as placeholders). The server's problems
 * are shown at their fields (`from_address`, `team_inboxes.sales.0`, ...). */
import { clear, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { me, teamName } from '../core/me.js';
import { notifierApi, notifierError } from './api.js';

var ANY_TEAM = '*';

function addresses(text) {
  return String(text || '').split(/[\s,;]+/).map(function (a) { return a.trim(); }).filter(Boolean);
}

export function build(root) {
  var box = h('div', { className: 'email-section' }, [h('p', { className: 'list-empty', i18n: 'common.loading' })]);
  root.appendChild(box);
  load();

  function load() {
    return notifierApi('GET', '/admin/email/settings').then(function (current) {
      clear(box);
      box.appendChild(form(current, load));
    }, function (err) {
      clear(box);
      box.appendChild(h('p', { className: 'form-error', testid: 'email-settings-error', attrs: { role: 'alert' }, text: notifierError(err) }));
    });
  }
}

function form(current, reload) {
  var defaults = current.defaults || {};
  var slots = {};   // field -> its error slot
  function slot(name) {
    slots[name] = h('div', { className: 'email-errors', testid: 'email-settings-field-error', data: { field: name } });
    return slots[name];
  }
  function row(labelKey, control, name, hintKey) {
    return h('label', { className: 'field email-setting' }, [
      h('span', { i18n: labelKey }), control,
      hintKey ? h('span', { className: 'email-hint', i18n: hintKey }) : null,
      slot(name),
    ]);
  }
  var fromName = h('input', { testid: 'email-from-name', attrs: { maxlength: 80, value: current.from_name || '', placeholder: (me.site && me.site.name) || '' } });
  var fromAddress = h('input', { testid: 'email-from-address', attrs: { type: 'text', maxlength: 254, value: current.from_address || '', placeholder: defaults.from_address || '' } });
  var replyDomain = h('input', { testid: 'email-reply-domain', attrs: { maxlength: 253, value: current.reply_domain || '', placeholder: defaults.reply_domain || '' } });
  var unread = h('input', { testid: 'email-unread-after', attrs: { type: 'number', min: 0, max: 86400, step: 1, value: current.unread_after_s != null ? current.unread_after_s : '', placeholder: defaults.unread_after_s != null ? String(defaults.unread_after_s) : '' } });
  var transcripts = h('input', { testid: 'email-transcripts', attrs: { type: 'checkbox', checked: current.transcripts !== false } });

  // one box per team of the site, the catch-all, and any team the settings name besides
  var inboxes = current.team_inboxes || {};
  var teams = [ANY_TEAM].concat(me.teams.map(function (x) { return x.team; }));
  Object.keys(inboxes).forEach(function (team) { if (teams.indexOf(team) < 0) teams.push(team); });
  var boxes = {};
  var inboxRows = teams.map(function (team) {
    boxes[team] = h('textarea', {
      testid: 'email-inbox', data: { team: team },
      attrs: { rows: 2, placeholder: t('emailAdmin.settings.inboxHint') },
    });
    boxes[team].value = (inboxes[team] || []).join('\n');
    return h('label', { className: 'field email-setting email-inbox' }, [
      h('span', { text: team === ANY_TEAM ? t('emailAdmin.settings.anyTeam') : teamName(team) }),
      boxes[team],
      slot('team_inboxes.' + team),
    ]);
  });

  var result = h('p', { className: 'email-result', testid: 'email-settings-result', attrs: { role: 'status' } });
  var save = h('button', { className: 'btn btn-primary', testid: 'email-settings-save', i18n: 'common.save', attrs: { type: 'submit' } });

  function body() {
    var teamInboxes = {};
    Object.keys(boxes).forEach(function (team) {
      var list = addresses(boxes[team].value);
      if (list.length) teamInboxes[team] = list;
    });
    return {
      from_name: fromName.value.trim() || null,
      from_address: fromAddress.value.trim() || null,
      reply_domain: replyDomain.value.trim() || null,
      team_inboxes: teamInboxes,
      unread_after_s: unread.value === '' ? null : Number(unread.value),
      transcripts: transcripts.checked,
    };
  }

  // the server's place for a problem -> the slot that shows it: `team_inboxes.sales.0` is the
  // sales box; an unknown place goes to the form's own slot
  function slotFor(loc) {
    var parts = String(loc || '').split('.');
    if (parts[0] === 'team_inboxes' && parts.length > 1 && slots['team_inboxes.' + parts[1]]) return slots['team_inboxes.' + parts[1]];
    return slots[parts[0]] || slots.form;
  }

  function showErrors(err) {
    var errors = (err.body && err.body.errors) || [];
    if (!errors.length) errors = [{ loc: 'form', msg: notifierError(err) }];
    errors.forEach(function (e) {
      slotFor(e.loc).appendChild(h('p', { className: 'form-error', testid: 'email-settings-problem', data: { loc: e.loc }, text: e.msg }));
    });
  }

  var node = h('form', {
    className: 'email-settings', testid: 'email-settings',
    on: { submit: function (e) {
      e.preventDefault();
      Object.keys(slots).forEach(function (k) { clear(slots[k]); });
      result.textContent = '';
      save.disabled = true;
      notifierApi('PUT', '/admin/email/settings', body()).then(function () {
        return reload().then(function () {
          var fresh = document.querySelector('[data-testid="email-settings-result"]');
          if (fresh) fresh.textContent = t('emailAdmin.settings.saved');
        });
      }, function (err) {
        save.disabled = false;
        showErrors(err);
      });
    } },
  }, [
    slot('form'),
    row('emailAdmin.settings.fromName', fromName, 'from_name', 'emailAdmin.settings.fromNameHint'),
    row('emailAdmin.settings.fromAddress', fromAddress, 'from_address', 'emailAdmin.settings.default'),
    row('emailAdmin.settings.replyDomain', replyDomain, 'reply_domain', 'emailAdmin.settings.replyDomainHint'),
    h('fieldset', { className: 'email-inboxes' }, [h('legend', { i18n: 'emailAdmin.settings.inboxes' }), slot('team_inboxes')].concat(inboxRows)),
    row('emailAdmin.settings.unreadAfter', unread, 'unread_after_s', 'emailAdmin.settings.unreadAfterHint'),
    h('label', { className: 'field email-check' }, [transcripts, h('span', { i18n: 'emailAdmin.settings.transcripts' }), slot('transcripts')]),
    h('div', { className: 'email-actions' }, [save, result]),
  ]);
  return node;
}
