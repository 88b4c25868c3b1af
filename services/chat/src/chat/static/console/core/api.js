/* The console's HTTP API client: JSON in and out, under /v1/console, with the session cookie. */
import { emit } from './events.js';
import { t } from './i18n.js';

export const API = '/v1/console';

export class ApiError {
  constructor(status, code, detail, body) {
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;        // the whole error body (e.g. per-field validation errors)
    this.message = detail || code || ('HTTP ' + status);
  }
}

// api('GET', '/visitors'): resolves with the parsed body (null for 204), rejects with ApiError
// (status 0: the network). A 401 emits 'session:lost' (the session ends), unless opts.login:
// then it means "wrong credentials". opts.raw: resolve with the Response (e.g. CSV downloads).
export function api(method, path, body, opts) {
  opts = opts || {};
  var init = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(API + path, init).then(function (res) {
    if (opts.raw && res.ok) return res;
    if (res.status === 204) return null;
    return res.text().then(function (raw) {
      var data;
      try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
      if (res.ok) return data;
      var err = new ApiError(res.status, data && data.error, data && data.detail, data);
      if (res.status === 401 && !opts.login) emit('session:lost');
      throw err;
    });
  }, function () {
    throw new ApiError(0, 'network', t('error.network'));
  });
}
