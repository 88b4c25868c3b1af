/* The leads API's client (services/leads, another origin): JSON in and out under
 * {me.leadsUrl}/v1/leads, with the agent's console session (the `beckon_agent` cookie, sent
 * cross-origin with credentials: 'include'; leads answers CORS for the console's origin and
 * confirms the session with chat). Errors are core/api.js's ApiError; a 401 here does not end
 * the console's session (chat's own calls decide that), it is shown where it happened. */
import { ApiError } from '../core/api.js';
import { t } from '../core/i18n.js';
import { me } from '../core/me.js';

export const LEADS = '/v1/leads';

export function leadsEnabled() { return !!me.leadsUrl; }

// The absolute URL of a leads path ('/reports/speed?format=csv'): for CSV download links.
export function leadsHref(path) { return me.leadsUrl + LEADS + path; }

// leadsApi('GET', ''), leadsApi('POST', '/<id>/claim'): the parsed body (null for 204).
export function leadsApi(method, path, body) {
  if (!me.leadsUrl) return Promise.reject(new ApiError(0, 'leads_off', t('leads.error.off')));
  var init = { method: method, credentials: 'include', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(leadsHref(path), init).then(function (res) {
    if (res.status === 204) return null;
    return res.text().then(function (raw) {
      var data;
      try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
      if (res.ok) return data;
      throw new ApiError(res.status, data && data.error, data && data.detail, data);
    });
  }, function () {
    throw new ApiError(0, 'network', t('leads.error.network'));
  });
}

// The text for a refusal: the console's own words for a known code, else the server's detail.
export function leadsError(err) {
  var key = 'leads.error.' + (err && err.code);
  var text = t(key);
  if (text !== key) return text;
  return (err && (err.detail || err.message)) || t('leads.error.network');
}
