/* Translations: t('key', {vars}), plural forms, and the static text of the page.
 * The strings themselves are in ../i18n/<locale>.js (one file per locale, the same keys). */
import { emit } from './events.js';
import en from '../i18n/en.js';
import fi from '../i18n/fi.js';

const dictionaries = { en: en, fi: fi };

export const i18n = {
  locale: 'en',
  has: function (key) { return key in dictionaries.en || key in (dictionaries[i18n.locale] || {}); },
  set: function (locale) {
    i18n.locale = dictionaries[locale] ? locale : 'en';
    document.documentElement.lang = i18n.locale;
    i18n.apply(document);
    emit('locale', i18n.locale);
  },
  // Static text: elements with data-i18n (textContent), data-i18n-placeholder, data-i18n-title.
  apply: function (root) {
    (root || document).querySelectorAll('[data-i18n]').forEach(function (n) {
      n.textContent = t(n.getAttribute('data-i18n'));
    });
    (root || document).querySelectorAll('[data-i18n-placeholder]').forEach(function (n) {
      n.setAttribute('placeholder', t(n.getAttribute('data-i18n-placeholder')));
    });
    (root || document).querySelectorAll('[data-i18n-title]').forEach(function (n) {
      n.setAttribute('title', t(n.getAttribute('data-i18n-title')));
    });
  },
};

// t('live.count', {n: 3}) -> the agent's language, falling back to English, then the key.
export function t(key, vars) {
  var text = (dictionaries[i18n.locale] || {})[key];
  if (text == null) text = dictionaries.en[key];
  if (text == null) return key;
  if (vars) {
    text = text.replace(/\{(\w+)\}/g, function (m, name) { return vars[name] != null ? String(vars[name]) : m; });
  }
  return text;
}

// The Intl locale of the agent's language (dates, numbers, plural rules).
export function intlLocale() { return i18n.locale === 'fi' ? 'fi-FI' : 'en-GB'; }

// Plural forms by the language's own rules (Intl.PluralRules): plural('card.messages', 3)
// reads 'card.messages.one' / 'card.messages.other' (or '.zero', '.few'... where a language
// has them), with {n} filled in as a formatted number; the bare key is the fallback.
export function plural(key, n, vars) {
  var count = Number(n) || 0;
  var form;
  try { form = new Intl.PluralRules(intlLocale()).select(count); } catch (e) { form = count === 1 ? 'one' : 'other'; }
  var number = new Intl.NumberFormat(intlLocale(), { maximumFractionDigits: 2 }).format(count);
  var values = Object.assign({ n: number }, vars || {});
  if (i18n.has(key + '.' + form)) return t(key + '.' + form, values);
  if (i18n.has(key + '.other')) return t(key + '.other', values);
  return t(key, values);
}
