/*! beckon.js 1.0.0 | Beckon tracking snippet | see docs/snippet.md */
(function (w, d, n, L) {
  'use strict';
  const prev = w.beckon;
  if (prev && prev.loaded) return;
  const VERSION = '1.0.0', IDLE = 18e5, MAX_Q = 500, MAX_BATCH = 100;
  const PAGE_TYPES = 'home category product search cart checkout confirmation content other'.split(' ');
  const ID = /^[A-Za-z0-9_.\-@+=]{1,128}$/;
  const me = d.currentScript;
  let cfg, endpoint, blocked, on = false, waiting = false, vid = null, sess = null, campaign = null;
  let q = [], busy = null, sentAt = 0, leaving = 0, timer = 0, pre = [], early = [], key = '', st = { n: 0, nb: 0 };
  let page = null, pageStart = 0, activeMs = 0, shownAt = 0, lastAct = Date.now(), lastBeat = 0;

  const now = () => Date.now();
  const iso = (t) => new Date(t).toISOString();
  const json = JSON.stringify;
  const parse = (s) => { try { return JSON.parse(s); } catch (e) { return null; } };
  const cut = (s, max) => (s == null || s === '' ? undefined : String(s).slice(0, max));
  const size = (s) => new Blob([s]).size;
  let ls = null;
  try { ls = w.localStorage; ls.setItem('bk_t', 1); ls.removeItem('bk_t'); } catch (e) { ls = null; }
  const get = (k) => { try { return ls && ls.getItem(k); } catch (e) { return null; } };
  const put = (k, v) => { try { v == null ? ls.removeItem(k) : ls.setItem(k, v); } catch (e) { /* no storage */ } };
  const lsKeys = () => { const a = []; for (let i = 0; ls && i < ls.length; i++) a.push(ls.key(i)); return a; };

  function setCookie(name, value, maxAge) {
    d.cookie = name + '=' + value + ';Max-Age=' + maxAge + ';Path=/;SameSite=Lax' +
      (cfg.cookieDomain ? ';Domain=' + cfg.cookieDomain : '') + (L.protocol == 'https:' ? ';Secure' : '');
  }

  function uuid7(t) {
    const b = crypto.getRandomValues(new Uint8Array(16));
    for (let i = 5, ms = t || now(); i >= 0; i--, ms = Math.floor(ms / 256)) b[i] = ms % 256;
    b[6] = (b[6] & 15) | 112;
    b[8] = (b[8] & 63) | 128;
    return Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('').replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
  }

  function urlCampaign() {
    const p = new URLSearchParams(L.search), c = {};
    let any;
    'source medium name term content'.split(' ').forEach((k) => {
      const v = p.get('utm_' + (k == 'name' ? 'campaign' : k));
      if (v) any = c[k] = cut(v, 512);
    });
    return any ? c : null;
  }

  function session(t) {
    let s = parse(get('bk_sess')) || sess;
    const c = campaign, host = (d.referrer || '').split('/')[2];
    campaign = null;
    if (!s || !ID.test(s.id) || t - s.t > IDLE || (c && json(c) != json(s.c))) {
      s = { id: uuid7(t), c: c || (host && host != L.host ? { source: host, medium: 'referral' } : null) };
    }
    s.t = Math.max(s.t || 0, t);
    put('bk_sess', json((sess = s)));
    return s;
  }

  const active = (t) => activeMs + (shownAt ? t - shownAt : 0);

  // one queue per tab (the tab id survives reloads); closed tabs' queues are adopted
  function load() {
    let tab;
    try { tab = sessionStorage.bk_tab || (sessionStorage.bk_tab = uuid7()); } catch (e) { tab = uuid7(); }
    key = 'bk_q_' + tab;
    const own = parse(get(key)) || {};
    let events = own.e || [];
    st = { n: own.n || 0, nb: own.nb || 0 };
    lsKeys().forEach((k) => {
      const o = k && k.indexOf('bk_q_') == 0 && k != key && parse(get(k));
      if (o && now() - o.t > 6e4) {
        events = (o.e || []).concat(events);
        put(k, null);
      }
    });
    q = events.filter((e) => e && typeof e.event_id == 'string');
    trim();
    save();
  }

  function save() {
    if (key) put(key, q.length || st.n ? json({ t: now(), n: st.n, nb: st.nb, e: q }) : null);
  }

  const idle = (e) => !(busy && busy.includes(e));
  function trim() {
    while (q.length > MAX_Q) {
      const i = q.findIndex((e) => e.type == 'heartbeat' && idle(e));
      q.splice(i < 0 ? Math.max(0, q.findIndex(idle)) : i, 1);
    }
  }

  function emit(type, payload, t) {
    t = t || now();
    if (!on) return waiting && pre.length < MAX_BATCH && pre.push([type, payload, t]);
    const s = session(t);
    q.push({ event_id: uuid7(t), type, occurred_at: iso(t), payload, v: vid, s: s.id, c: { page, campaign: s.c || null } });
    trim();
    save();
    if (q.length - (busy ? busy.length : 0) >= 10) send();
    else later(1500);
  }

  function later(ms) {
    if (!timer) timer = setTimeout(send, ms);
  }

  function pack(limit) {
    const first = q[0], c0 = json(first.c);
    let k = 0;
    while (k < q.length && k < MAX_BATCH && q[k].v == first.v && q[k].s == first.s) k++;
    for (;;) {
      const batch = q.slice(0, k);
      const body = json({
        visitor_id: first.v,
        session_id: first.s,
        sent_at: iso(now()),
        context: Object.assign({
          locale: cut(n.language, 35),
          timezone: cut(Intl.DateTimeFormat().resolvedOptions().timeZone, 64),
          screen_width: screen.width,
          screen_height: screen.height,
          library: 'beckon.js/' + VERSION,
        }, first.c),
        events: batch.map((e) => {
          const x = { event_id: e.event_id, type: e.type, occurred_at: e.occurred_at, payload: e.payload };
          if (json(e.c) != c0) x.context = e.c;
          return x;
        }),
      });
      if (k < 2 || size(body) <= limit) return [batch, body];
      k = Math.ceil(k / 2);
    }
  }

  const url = () => endpoint + '/v1/collect?k=' + encodeURIComponent(cfg.siteKey || '');

  function send() {
    clearTimeout(timer);
    timer = 0;
    if (!on || busy || !q.length) return;
    if (st.nb > now()) return later(st.nb - now());
    const [batch, body] = pack(4e5);
    busy = batch;
    sentAt = now();
    fetch(url(), { method: 'POST', body, credentials: 'omit', keepalive: size(body) < 6e4 })
      .then((r) => {
        if (r.status == 429 || r.status >= 500) return done(batch, r);
        if (!r.ok) r.text().then((x) => console.warn('beckon: refused ' + r.status + ' ' + x), Boolean);
        done(batch);
      }, () => done(batch, 1));
  }

  function done(batch, retry) {
    if (busy == batch) busy = null;
    if (!on) return;
    if (retry) {
      const base = Math.min(3e5, 1e3 * 2 ** (st.n = Math.min(st.n + 1, 12)));
      const h = retry.headers && retry.headers.get('Retry-After');
      const told = h ? (isFinite(h) ? h * 1e3 : Date.parse(h) - now()) || 0 : 0;
      const delay = Math.max(base / 2 + (Math.random() * base) / 2, told);
      st.nb = now() + delay;
      save();
      return later(delay);
    }
    q = q.filter((e) => !batch.includes(e));
    st = { n: 0, nb: 0 };
    save();
    if (q.length) later(q.length >= 10 ? 0 : 1500);
  }

  // kept for the next page: tracker failing or hanging, or going to a page here (docs/snippet.md)
  function unload() {
    if (!on) return;
    if (!st.n && !(busy && now() - sentAt > 3e3) && now() - leaving > 1e4) {
      while (q.length) {
        const [batch, body] = pack(6e4);
        if (!beacon(body)) break;
        q = q.slice(batch.length);
      }
    }
    save();
  }

  function beacon(body) {
    try {
      if (n.sendBeacon(url(), new Blob([body], { type: 'text/plain;charset=UTF-8' }))) return true;
      fetch(url(), { method: 'POST', body, credentials: 'omit', keepalive: true }).catch(Boolean);
      return true;
    } catch (e) {
      return false;
    }
  }

  function beat(final) {
    const t = now(), seconds = Math.min(86400, Math.floor((t - pageStart) / 1e3));
    if (!on || t - lastAct > IDLE || (final !== true && d.hidden) || seconds <= lastBeat) return;
    lastBeat = seconds;
    emit('heartbeat', { seconds_on_page: seconds, active_seconds: Math.min(86400, Math.floor(active(t) / 1e3)) }, t);
  }

  function onVisibility() {
    const t = now();
    if (d.hidden) {
      activeMs = active(t);
      shownAt = 0;
      beat(true);
      unload();
    } else shownAt = lastAct = t;
  }

  function view(o, t) {
    const type = o.page_type || o.pageType;
    campaign = urlCampaign();
    page = { url: cut(L.href, 2048), path: cut(L.pathname, 2048), title: cut(d.title, 512), referrer: cut(page ? page.url : d.referrer, 2048) };
    pageStart = t;
    activeMs = lastBeat = 0;
    shownAt = d.hidden ? 0 : t;
    emit('page_viewed', { page_type: type && (PAGE_TYPES.includes(type) ? type : 'other'), search_query: cut(o.search_query, 512) }, t);
  }

  const str = (x) => (x == null ? undefined : String(x));
  const num = (x) => (x == null || x === '' ? undefined : +x);
  const item = (i) => ({
    product_id: str(i.product_id != null ? i.product_id : i.id),
    name: cut(i.name, 512),
    category: cut(i.category, 512),
    price: num(i.price),
    quantity: i.quantity == null ? 1 : num(i.quantity),
  });
  const currency = (o) => cut(o.currency || cfg.currency, 3);

  function money(o, extra) {
    const items = (o.items || []).map(item);
    const total = items.reduce((sum, i) => sum + i.price * i.quantity, 0);
    return Object.assign(extra, { items, value: o.value != null ? num(o.value) : Math.round(total * 100) / 100, currency: currency(o) });
  }

  function start() {
    on = true;
    waiting = false;
    const m = d.cookie.match(/(?:^|; )bk_vid=([^;]*)/);
    vid = [m && m[1], get('bk_vid')].find((x) => x && ID.test(x)) || uuid7();
    setCookie('bk_vid', vid, 63072000);
    put('bk_vid', vid);
    load();
    pre.splice(0).forEach((a) => emit(...a));
    if (q.length) later(0);
  }

  function consent(granted) {
    put('bk_consent', granted ? 1 : 0);
    if (granted) return on || blocked || start();
    on = waiting = false;
    q = [];
    pre = [];
    busy = vid = sess = null;
    clearTimeout(timer);
    timer = 0;
    lsKeys().forEach((k) => /^bk_(q_|vid|sess)/.test(k) && put(k, null));
    setCookie('bk_vid', '', 0);
  }

  function init(o, t) {
    if (cfg) return;
    cfg = o;
    endpoint = (cfg.endpoint || (me && me.src ? me.src.replace(/\/[^/]*$/, '') : '')).replace(/\/+$/, '');
    const dnt = n.doNotTrack == 1 || w.doNotTrack == 1 || n.globalPrivacyControl === true;
    blocked = (dnt && cfg.respectDnt !== false) || (n.webdriver === true && !cfg.allowAutomation);
    const stored = get('bk_consent');
    waiting = !blocked && stored != '0' && !!cfg.requireConsent && stored != '1';
    if (!blocked) {
      if (stored != '0' && !waiting) start();
      d.addEventListener('visibilitychange', onVisibility);
      w.addEventListener('pagehide', unload);
      if (w.navigation) w.navigation.addEventListener('navigate', (e) => {
        leaving = !e.destination.sameDocument && !e.downloadRequest && !e.destination.url.indexOf(L.origin + '/') ? now() : 0;
      });
      'mousemove keydown scroll touchstart click'.split(' ').forEach((e) => w.addEventListener(e, () => { lastAct = now(); }, { passive: true, capture: true }));
      setInterval(beat, 15e3);
    }
    // the chat widget reads siteKey and url here, the visitor from beckon.visitorId()
    if (cfg.chatUrl) {
      api.chat = { siteKey: cfg.siteKey, url: cfg.chatUrl.replace(/\/+$/, '') };
      d.head.appendChild(Object.assign(d.createElement('script'), { async: true, src: api.chat.url + '/widget.js' }));
    }
    const meta = d.querySelector('meta[name="beckon:page-type"]');
    if (cfg.autoPageView !== false) view({ page_type: cfg.pageType || (meta && meta.content), search_query: cfg.searchQuery }, t);
    early.splice(0).forEach((c) => run(...c));
  }

  const commands = {
    page: (o, x, t) => view(o, t),
    product: (p, x, t) => emit('product_viewed', Object.assign(item(p), { quantity: undefined, currency: currency(p) }), t),
    cart: (o, x, t) => emit('cart_updated', money(o, {}), t),
    checkout: (o, x, t) => emit('checkout_started', money(o, {}), t),
    order: (o, x, t) => emit('order_completed', money(o, { order_id: str(o.order_id != null ? o.order_id : o.id) }), t),
    identify: (user, traits, t) => {
      if (typeof user == 'object') { traits = user; user = null; }
      const { user_hash: h, ...r } = traits || {}; // docs/identity.md
      emit('identified', { user_id: str(user), traits: r, user_hash: h ? '' + h : undefined }, t);
    },
    track: (name, props, t) => emit('custom', { event: cut(name, 200), properties: props || {} }, t),
    consent: (granted) => consent(granted !== false),
    flush: send,
  };

  function run(args, t) {
    const [cmd, a, b] = args;
    if (cmd == 'init') return init(a || {}, t);
    if (!cfg) return early.push([args, t]);
    try {
      commands[cmd](a == null ? {} : a, b, t);
    } catch (e) {
      console.warn('beckon: ' + cmd, e);
    }
  }

  const api = function () { run(arguments, now()); };
  api.loaded = true;
  api.version = VERSION;
  api.visitorId = () => (on ? vid : null);
  api.sessionId = () => (on ? (parse(get('bk_sess')) || sess || {}).id : null);
  w.beckon = api;
  const calls = ((prev && prev.q) || []).map((c) => (Array.isArray(c) ? c : [c, now()]));
  calls.filter((c) => c[0][0] == 'init').concat(calls.filter((c) => c[0][0] != 'init')).forEach((c) => run(...c));
})(window, document, navigator, location);
