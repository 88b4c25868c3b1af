/* Formatting in the agent's locale (money, numbers, dates, durations) and the visitor's
 * label, device and source as the server describes them. */
import { i18n, intlLocale, t } from './i18n.js';

export const fmt = {
  money: function (value, currency) {
    if (value == null || value === '') return t('common.none');
    var n = Number(value);
    if (!isFinite(n)) return t('common.none');
    try {
      return new Intl.NumberFormat(intlLocale(), { style: 'currency', currency: currency || 'EUR' }).format(n);
    } catch (e) {
      return new Intl.NumberFormat(intlLocale(), { maximumFractionDigits: 2 }).format(n) + ' ' + (currency || '');
    }
  },
  number: function (value, digits) {
    if (value == null || !isFinite(Number(value))) return t('common.none');
    return new Intl.NumberFormat(intlLocale(), { maximumFractionDigits: digits == null ? 0 : digits }).format(Number(value));
  },
  percent: function (ratio, digits) {
    if (ratio == null || !isFinite(Number(ratio))) return t('common.none');
    return new Intl.NumberFormat(intlLocale(), { style: 'percent', maximumFractionDigits: digits == null ? 1 : digits }).format(Number(ratio));
  },
  dateTime: function (iso) {
    var d = iso instanceof Date ? iso : new Date(iso);
    if (!iso || isNaN(d.getTime())) return '';
    return d.toLocaleString(intlLocale(), { dateStyle: 'medium', timeStyle: 'short' });
  },
  date: function (iso) {
    var d = iso instanceof Date ? iso : new Date(iso);
    if (!iso || isNaN(d.getTime())) return '';
    return d.toLocaleDateString(intlLocale(), { dateStyle: 'medium' });
  },
  time: function (iso) {
    var d = iso instanceof Date ? iso : new Date(iso);
    if (!iso || isNaN(d.getTime())) return '';
    var now = new Date();
    var time = d.toLocaleTimeString(intlLocale(), { hour: '2-digit', minute: '2-digit' });
    if (d.toDateString() === now.toDateString()) return time;
    return d.toLocaleDateString(intlLocale(), { month: 'short', day: 'numeric' }) + ' ' + time;
  },
  // 245760 -> "240 kB"; 1500000 -> "1.4 MB" (in the agent's locale)
  bytes: function (value) {
    var n = Number(value);
    if (value == null || !isFinite(n) || n < 0) return t('common.none');
    var units = ['byte', 'kilobyte', 'megabyte', 'gigabyte'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return new Intl.NumberFormat(intlLocale(), { style: 'unit', unit: units[i], unitDisplay: 'short', maximumFractionDigits: i < 2 ? 0 : 1 }).format(n);
  },
  // 75 -> "1 min 15 s"; 4000 -> "1 h 6 min"
  duration: function (seconds) {
    if (seconds == null || !isFinite(Number(seconds))) return t('common.none');
    var s = Math.max(0, Math.round(Number(seconds)));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : '');
    return Math.floor(s / 3600) + ' h' + (Math.floor(s % 3600 / 60) ? ' ' + Math.floor(s % 3600 / 60) + ' min' : '');
  },
};

// A visitor's label as the server sends it ({en, fi}: a name, an e-mail or a pseudonym),
// in the agent's language; `fallback` (an id) when there is none.
export function visitorLabel(label, fallback) {
  if (label && typeof label === 'object') return label[i18n.locale] || label.en || fallback || '';
  if (typeof label === 'string' && label) return label;
  return fallback || '';
}

// "Mobile · Safari" from a live row or a chat row's `visitor` (device, browser)
export function visitorDevice(v) {
  if (!v) return '';
  var key = 'visitor.device.' + (v.device || '');
  var device = v.device && i18n.has(key) ? t(key) : '';
  return [device, v.browser].filter(Boolean).join(' · ');
}

// where the visit came from (the server's `landing`): the UTM source or the referring
// site, else "Direct"
export function visitorSource(v) {
  var landing = (v && v.landing) || {};
  if (landing.kind && landing.kind !== 'direct' && landing.text) return landing.text;
  if (!landing.kind && v && v.source && v.source !== 'direct') return v.source;
  return t('visitor.direct');
}
