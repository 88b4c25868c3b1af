/* Beckon console core: what every console feature script shares, as `window.Beckon`.
 *
 * Plain ES2017, no build step, strict CSP (no inline script or style). Load order (index.html):
 * core.js, console.js (session, socket, the chats view), then one script per feature
 * (live.js, card.js, toolkit.js, admin.js, reports.js). A feature:
 *   - registers its strings:  Beckon.i18n.add('en', {...}); Beckon.i18n.add('fi', {...});
 *   - registers a view (tab): Beckon.views.register('visitors', {label: 'nav.visitors', ...});
 *   - listens:                Beckon.on('ready', fn) / 'reset' / 'frame:<t>' / 'conversation:open'
 *   - calls the API:          Beckon.api('GET', '/visitors') (paths under /v1/console)
 *   - sends socket frames:    Beckon.send({t: 'visitors.subscribe'})
 * Server text goes into the page with textContent (Beckon.h), never as HTML.
 */
'use strict';

(function () {
  var API = '/v1/console';
  var listeners = new Map();   // event name -> [fn]

  // ---------------------------------------------------------------- events

  function on(name, fn) {
    if (!listeners.has(name)) listeners.set(name, []);
    listeners.get(name).push(fn);
  }

  function emit(name, data) {
    (listeners.get(name) || []).forEach(function (fn) {
      try { fn(data); } catch (e) { if (window.console) window.console.error(name, e); }
    });
  }

  function hasListener(name) { return (listeners.get(name) || []).length > 0; }

  // ---------------------------------------------------------------- DOM

  function $(id) { return document.getElementById(id); }

  // Builds an element; string children become text nodes, so data can never become markup.
  // props: className, text, testid, data {k: v}, attrs {k: v}, on {event: fn}
  function h(tag, props, children) {
    var node = document.createElement(tag);
    props = props || {};
    if (props.className) node.className = props.className;
    if (props.text != null) node.textContent = String(props.text);
    if (props.testid) node.setAttribute('data-testid', props.testid);
    if (props.i18n) { node.setAttribute('data-i18n', props.i18n); node.textContent = t(props.i18n); }
    if (props.data) {
      Object.keys(props.data).forEach(function (k) {
        if (props.data[k] != null) node.setAttribute('data-' + k, String(props.data[k]));
      });
    }
    if (props.attrs) {
      Object.keys(props.attrs).forEach(function (k) {
        if (props.attrs[k] != null && props.attrs[k] !== false) node.setAttribute(k, String(props.attrs[k]));
      });
    }
    if (props.on) {
      Object.keys(props.on).forEach(function (k) { node.addEventListener(k, props.on[k]); });
    }
    (children || []).forEach(function (c) {
      if (c == null) return;
      node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    });
    return node;
  }

  function show(node, visible) { if (node) node.hidden = !visible; }

  function clear(node) { while (node && node.firstChild) node.removeChild(node.firstChild); }

  // ---------------------------------------------------------------- HTTP

  function ApiError(status, code, detail, body) {
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;        // the whole error body (e.g. per-field validation errors)
    this.message = detail || code || ('HTTP ' + status);
  }

  // opts.login: a 401 means "wrong credentials", not "session gone".
  // opts.raw: resolve with the Response (e.g. CSV downloads).
  function api(method, path, body, opts) {
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
        var data = null;
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

  // ---------------------------------------------------------------- i18n

  var LOCALES = ['en', 'fi'];
  var dictionaries = { en: {}, fi: {} };
  var i18n = {
    locale: 'en',
    locales: LOCALES,
    add: function (locale, strings) {
      if (!dictionaries[locale]) dictionaries[locale] = {};
      Object.keys(strings).forEach(function (k) { dictionaries[locale][k] = strings[k]; });
    },
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
  function t(key, vars) {
    var text = (dictionaries[i18n.locale] || {})[key];
    if (text == null) text = dictionaries.en[key];
    if (text == null) return key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, function (m, name) { return vars[name] != null ? String(vars[name]) : m; });
    }
    return text;
  }

  i18n.add('en', {
    'nav.chats': 'Chats',
    'nav.visitors': 'Visitors',
    'nav.answers': 'Answers',
    'nav.reports': 'Reports',
    'nav.admin': 'Admin',
    'error.network': 'The server cannot be reached.',
    'common.save': 'Save',
    'common.cancel': 'Cancel',
    'common.close': 'Close',
    'common.loading': 'Loading…',
    'common.none': '—',
    'language.en': 'English',
    'language.fi': 'Suomi',
    'visitor.direct': 'Direct',
    'visitor.device.desktop': 'Desktop',
    'visitor.device.mobile': 'Mobile',
    'visitor.device.tablet': 'Tablet',
    'visitor.device.bot': 'Bot',
    'visitor.device.other': 'Other device',
  });
  i18n.add('fi', {
    'nav.chats': 'Keskustelut',
    'nav.visitors': 'Kävijät',
    'nav.answers': 'Vastaukset',
    'nav.reports': 'Raportit',
    'nav.admin': 'Ylläpito',
    'error.network': 'Palvelimeen ei saada yhteyttä.',
    'common.save': 'Tallenna',
    'common.cancel': 'Peruuta',
    'common.close': 'Sulje',
    'common.loading': 'Ladataan…',
    'common.none': '—',
    'language.en': 'English',
    'language.fi': 'Suomi',
    'visitor.direct': 'Suora',
    'visitor.device.desktop': 'Tietokone',
    'visitor.device.mobile': 'Puhelin',
    'visitor.device.tablet': 'Tabletti',
    'visitor.device.bot': 'Botti',
    'visitor.device.other': 'Muu laite',
  });

  // Plural forms by the language's own rules (Intl.PluralRules): plural('card.messages', 3)
  // reads 'card.messages.one' / 'card.messages.other' (or '.zero', '.few'... where a language
  // has them), with {n} filled in as a formatted number; the bare key is the fallback.
  function plural(key, n, vars) {
    var count = Number(n) || 0;
    var form = 'other';
    try { form = new Intl.PluralRules(intlLocale()).select(count); } catch (e) { form = count === 1 ? 'one' : 'other'; }
    var values = Object.assign({ n: fmt.number(count, 2) }, vars || {});
    if (i18n.has(key + '.' + form)) return t(key + '.' + form, values);
    if (i18n.has(key + '.other')) return t(key + '.other', values);
    return t(key, values);
  }

  // A visitor's label as the server sends it ({en, fi}: a name, an e-mail or a pseudonym),
  // in the agent's language; `fallback` (an id) when there is none.
  function visitorLabel(label, fallback) {
    if (label && typeof label === 'object') return label[i18n.locale] || label.en || fallback || '';
    if (typeof label === 'string' && label) return label;
    return fallback || '';
  }

  // "Mobile · Safari" from a live row or a chat row's `visitor` (device, browser)
  function visitorDevice(v) {
    if (!v) return '';
    var key = 'visitor.device.' + (v.device || '');
    var device = v.device && i18n.has(key) ? t(key) : '';
    return [device, v.browser].filter(Boolean).join(' · ');
  }

  // where the visit came from (the server's `landing`): the UTM source or the referring
  // site, else "Direct"
  function visitorSource(v) {
    var landing = (v && v.landing) || {};
    if (landing.kind && landing.kind !== 'direct' && landing.text) return landing.text;
    if (!landing.kind && v && v.source && v.source !== 'direct') return v.source;
    return t('visitor.direct');
  }

  // ---------------------------------------------------------------- formatting (agent's locale)

  function intlLocale() { return i18n.locale === 'fi' ? 'fi-FI' : 'en-GB'; }

  var fmt = {
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
    // 75 -> "1 min 15 s"; 4000 -> "1 h 6 min"
    duration: function (seconds) {
      if (seconds == null || !isFinite(Number(seconds))) return t('common.none');
      var s = Math.max(0, Math.round(Number(seconds)));
      if (s < 60) return s + ' s';
      if (s < 3600) return Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : '');
      return Math.floor(s / 3600) + ' h' + (Math.floor(s % 3600 / 60) ? ' ' + Math.floor(s % 3600 / 60) + ' min' : '');
    },
  };

  // ---------------------------------------------------------------- views (tabs)

  var views = {
    list: [],         // [{name, label, adminOnly}]
    current: 'chats',
    // spec: {label: i18n key, adminOnly: bool, onShow(), onHide()}; the container is
    // <section id="view-NAME"> (index.html); the chats view is console.js's own.
    register: function (name, spec) {
      spec = spec || {};
      views.list.push({ name: name, label: spec.label || ('nav.' + name), adminOnly: !!spec.adminOnly, spec: spec });
      if (Beckon.agent) views.renderTabs();
    },
    container: function (name) { return $('view-' + name); },
    renderTabs: function () {
      var nav = $('view-tabs');
      if (!nav) return;
      clear(nav);
      var admin = Beckon.agent && Beckon.agent.role === 'admin';
      [{ name: 'chats', label: 'nav.chats' }].concat(views.list).forEach(function (v) {
        if (v.adminOnly && !admin) return;
        var tab = h('button', {
          className: 'view-tab',
          testid: 'tab-' + v.name,
          i18n: v.label,
          attrs: { type: 'button', role: 'tab', 'aria-selected': v.name === views.current ? 'true' : 'false' },
          on: { click: function () { views.show(v.name); } },
        });
        nav.appendChild(tab);
      });
    },
    show: function (name) {
      var previous = views.current;
      if (previous === name) return;
      var entry = views.list.find(function (v) { return v.name === previous; });
      if (entry && entry.spec.onHide) entry.spec.onHide();
      document.querySelectorAll('#app .view').forEach(function (n) { n.hidden = n.getAttribute('data-view') !== name; });
      views.current = name;
      views.renderTabs();
      entry = views.list.find(function (v) { return v.name === name; });
      if (entry && entry.spec.onShow) entry.spec.onShow();
      emit('view', name);
    },
  };

  var Beckon = {
    API: API,
    agent: null,      // the logged-in agent (set on 'ready'; updated live)
    site: null,       // the agent's site (settings included)
    teams: [],        // [{team, name}]
    on: on,
    emit: emit,
    hasListener: hasListener,
    $: $,
    h: h,
    show: show,
    clear: clear,
    api: api,
    ApiError: ApiError,
    i18n: i18n,
    t: t,
    fmt: fmt,
    plural: plural,
    visitorLabel: visitorLabel,
    visitorDevice: visitorDevice,
    visitorSource: visitorSource,
    views: views,
    // set by console.js: send a frame on the agent's socket (false when it is down)
    send: function () { return false; },
    // set by console.js: open a conversation in the chats view
    openConversation: function () {},
  };

  on('ready', function (me) {
    Beckon.agent = me.agent;
    Beckon.site = me.site || {};
    Beckon.teams = me.teams || [];
    i18n.set((me.agent && me.agent.locale) || 'en');
    views.renderTabs();
  });
  on('agent', function (agent) { Beckon.agent = agent; });
  on('reset', function () {
    Beckon.agent = null;
    Beckon.site = null;
    Beckon.teams = [];
    views.show('chats');
  });

  window.Beckon = Beckon;
})();
