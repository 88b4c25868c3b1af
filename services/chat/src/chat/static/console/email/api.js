/* The notifier's client (services/notifier, another origin): JSON in and out under
 * {me.notifierUrl}/v1, with the agent's console session (the `beckon_agent` cookie, sent
 * cross-origin with credentials: 'include'; the notifier answers CORS for the console's
 * origin and confirms the session with chat). Errors are core/api.js's ApiError; a 401 here
 * does not end the console's session (chat's own calls decide that), it is shown where it
 * happened, like 403 (admins only) and 503 (chat cannot confirm the session now). */
import { ApiError } from '../core/api.js';
import { t } from '../core/i18n.js';
import { me } from '../core/me.js';

export function notifierEnabled() { return !!me.notifierUrl; }

export function enc(value) { return encodeURIComponent(String(value)); }

// notifierApi('GET', '/email/offline'), notifierApi('PUT', '/admin/email/settings', body):
// the parsed body (null for 204).
export function notifierApi(method, path, body) {
  if (!me.notifierUrl) return Promise.reject(new ApiError(0, 'notifier_off', t('email.error.off')));
  var init = { method: method, credentials: 'include', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(me.notifierUrl + '/v1' + path, init).then(function (res) {
    if (res.status === 204) return null;
    return res.text().then(function (raw) {
      var data;
      try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
      if (res.ok) return data;
      throw new ApiError(res.status, data && data.error, data && data.detail, data);
    });
  }, function () {
    throw new ApiError(0, 'network', t('email.error.network'));
  });
}

// The text for a refusal: the console's own words for a known code, else the server's detail.
export function notifierError(err) {
  var key = 'email.error.' + (err && err.code);
  var text = t(key);
  if (text !== key) return text;
  if (err && err.status === 503) return t('email.error.unavailable');
  return (err && (err.detail || err.message)) || t('email.error.network');
}
