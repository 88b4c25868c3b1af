/* The E-mail admin's template previews (GET /v1/admin/email/templates, then
 * /v1/admin/email/templates/{name}/preview?language=): one template at a time, English and
 * Finnish side by side, each with its subject, its HTML part and its plain-text part, made from
 * sample data. The HTML is the notifier's own page (…/preview.html, sample data only, its own
 * CSP allowing the e-mail's inline styles and nothing that runs) in an iframe with
 * `sandbox=""`: an opaque origin where no script runs, no form posts and no link navigates the
 * console. (A `srcdoc` frame would take the console's CSP, which refuses inline styles.) */
import { clear, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { me } from '../core/me.js';
import { enc, notifierApi, notifierError } from './api.js';
import { label, TEMPLATE } from './log.js';

var chosen = 'transcript';

export function build(root) {
  var picker = h('select', { testid: 'email-template', on: { change: function () { chosen = picker.value; show(); } } });
  var error = h('p', { className: 'form-error', testid: 'email-template-error', attrs: { role: 'alert', hidden: true } });
  var panes = h('div', { className: 'email-previews', testid: 'email-previews' });
  root.appendChild(h('div', { className: 'email-section' }, [
    h('div', { className: 'email-bar' }, [h('label', { className: 'field email-field' }, [h('span', { i18n: 'emailAdmin.templates.pick' }), picker]),
      h('span', { className: 'email-hint', i18n: 'emailAdmin.templates.hint' })]),
    error,
    panes,
  ]));
  var languages = ['en', 'fi'];
  var seq = 0;

  notifierApi('GET', '/admin/email/templates').then(function (answer) {
    var names = (answer && answer.templates) || [];
    languages = (answer && answer.languages) || languages;
    if (names.indexOf(chosen) < 0) chosen = names[0];
    names.forEach(function (name) { picker.appendChild(h('option', { attrs: { value: name }, text: label(TEMPLATE, name) })); });
    picker.value = chosen;
    show();
  }, failed);

  function failed(err) {
    error.textContent = notifierError(err);
    error.hidden = false;
  }

  function show() {
    var mine = ++seq;
    error.hidden = true;
    clear(panes);
    if (!chosen) return;
    languages.forEach(function (language) {
      var pane = h('section', { className: 'email-preview', testid: 'email-preview', data: { language: language } }, [
        h('h3', { className: 'email-preview-lang', text: t('language.' + language) }),
        h('p', { className: 'list-empty', i18n: 'common.loading' }),
      ]);
      panes.appendChild(pane);
      notifierApi('GET', '/admin/email/templates/' + enc(chosen) + '/preview?language=' + enc(language)).then(function (rendered) {
        if (mine !== seq) return;
        fill(pane, language, Object.assign({ name: chosen }, rendered));
      }, function (err) { if (mine === seq) failed(err); });
    });
  }
}

function fill(pane, language, rendered) {
  clear(pane);
  var frame = h('iframe', {
    className: 'email-preview-html', testid: 'email-preview-html',
    attrs: { sandbox: '', title: t('emailAdmin.templates.html'), referrerpolicy: 'no-referrer' },
  });
  frame.src = me.notifierUrl + '/v1/email/templates/' + enc(rendered.name) + '/preview.html?language=' + enc(language);
  pane.appendChild(h('h3', { className: 'email-preview-lang', text: t('language.' + language) }));
  pane.appendChild(h('dl', { className: 'email-facts' }, [
    h('dt', { i18n: 'emailAdmin.col.subject' }),
    h('dd', { testid: 'email-preview-subject', text: rendered.subject || '' }),
  ]));
  pane.appendChild(h('h4', { i18n: 'emailAdmin.templates.html' }));
  pane.appendChild(frame);
  pane.appendChild(h('h4', { i18n: 'emailAdmin.templates.text' }));
  pane.appendChild(h('pre', { className: 'email-preview-text', testid: 'email-preview-text', text: rendered.text || '' }));
}
