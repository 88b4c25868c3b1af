/* Beckon console feature: the visitor card.
 *
 * Beside the open conversation (in <aside id="card-panel">) and, from the live visitors list,
 * as a drawer over the page: showCard(visitorId) / hideCard().
 * Data: GET /v1/console/visitors/{id}/card (identity, live score, source, history by visit,
 * past conversations with transcripts, leads); older history with ?before=<cursor>.
 * Every server string goes in with textContent (h); links only for http(s) URLs.
 */
import { api } from './core/api.js';
import { $, clear, h } from './core/dom.js';
import { on } from './core/events.js';
import { fmt, visitorDevice, visitorLabel, visitorSource } from './core/format.js';
import { i18n, plural, t } from './core/i18n.js';

var REFRESH_MS = 10000;

// One card per place: the panel beside the conversation, the drawer over any view.
function Slot(name) {
  this.name = name;
  this.visitorId = null;
  this.conversationId = null;
  this.data = null;        // the first page's answer
  this.older = [];         // visits from "show older" pages
  this.next = null;        // cursor of the next older page
  this.error = null;
  this.loading = false;
  this.expanded = {};      // conversation id -> true
  this.request = 0;
  this.loadedAt = 0;
  this.root = null;
}

var panel = new Slot('panel');
var drawer = new Slot('drawer');
var drawerNode = null;
var refreshTimer = null;

// ---------------------------------------------------------------- data

function cardPath(id, before) {
  return '/visitors/' + encodeURIComponent(id) + '/card' + (before ? '?before=' + encodeURIComponent(before) : '');
}

function load(slot, quiet) {
  var id = slot.visitorId;
  if (!id) return Promise.resolve();
  var request = ++slot.request;
  slot.loadedAt = Date.now();
  if (!quiet) { slot.loading = true; render(slot); }
  return api('GET', cardPath(id)).then(function (data) {
    if (request !== slot.request || slot.visitorId !== id) return;
    var changed = JSON.stringify(data) !== JSON.stringify(slot.data);
    slot.loading = false;
    slot.error = null;
    if (!changed && quiet) return;
    slot.data = data;
    slot.older = [];
    slot.next = data.history ? data.history.next : null;
    render(slot);
  }, function (e) {
    if (request !== slot.request || slot.visitorId !== id) return;
    slot.loading = false;
    if (quiet && slot.data) return;  // keep what is shown; the next refresh tries again
    slot.data = null;
    slot.error = e;
    render(slot);
  });
}

function loadOlder(slot) {
  var id = slot.visitorId;
  var cursor = slot.next;
  if (!id || !cursor) return;
  slot.next = null;
  render(slot);
  api('GET', cardPath(id, cursor)).then(function (data) {
    if (slot.visitorId !== id) return;
    slot.older = slot.older.concat(data.history.visits);
    slot.next = data.history.next;
    render(slot);
  }, function () {
    slot.next = cursor;
    render(slot);
  });
}

// The history of every loaded page, with a visit split across two pages joined again.
function allVisits(slot) {
  var visits = (slot.data && slot.data.history ? slot.data.history.visits : []).slice();
  slot.older.forEach(function (v) {
    var last = visits[visits.length - 1];
    if (last && v.session_id && last.session_id === v.session_id) {
      visits[visits.length - 1] = Object.assign({}, last, {
        started_at: v.started_at,
        events: last.events.concat(v.events),
      });
    } else {
      visits.push(v);
    }
  });
  return visits;
}

// ---------------------------------------------------------------- small pieces

function section(key, testid, children) {
  return h('section', { className: 'card-section', testid: testid }, [
    h('h3', { className: 'card-h', i18n: key }),
  ].concat(children));
}

function empty(key) { return h('p', { className: 'card-empty', i18n: key }); }

function safeHref(url) {
  return typeof url === 'string' && /^https?:\/\//i.test(url) ? url : null;
}

function pageLink(url, title) {
  var href = safeHref(url);
  var label = title || url || t('common.none');
  if (!href) return h('span', { className: 'card-page', text: label });
  return h('a', {
    className: 'card-page',
    text: label,
    attrs: { href: href, target: '_blank', rel: 'noopener noreferrer', title: url },
  });
}

function factorLabel(key) {
  var k = 'card.factor.' + key;
  return i18n.has(k) ? t(k) : String(key).replace(/[_-]+/g, ' ');
}

function segmentLabel(segment) {
  if (!segment) return t('common.none');
  var k = 'card.segment.' + segment;
  return i18n.has(k) ? t(k) : segment;
}

function summaryText(products, pages) {
  return t('card.summary', { products: plural('card.summary.products', products), pages: plural('card.summary.pages', pages) });
}

// ---------------------------------------------------------------- sections

function header(slot, data) {
  var identity = data.identity || {};
  var live = data.live;
  var title = visitorLabel(identity.label, identity.name || identity.email || t('card.anonymous'));
  var closeButton = slot.name === 'drawer'
    ? h('button', {
      className: 'btn btn-ghost card-close',
      testid: 'card-close',
      i18n: 'card.close',
      attrs: { type: 'button' },
      on: { click: hideCard },
    })
    : null;
  var summary = data.summary || {};
  var bits = [summaryText(summary.products, summary.pages)];
  var cart = data.now && data.now.cart;
  if (cart && cart.value) bits.push(t('card.summary.cart', { value: fmt.money(cart.value, cart.currency) }));
  var orderTotal = 0;
  var orderCurrency = null;
  allVisits(slot).forEach(function (v) {
    if (v.summary && v.summary.order_value) {
      orderTotal += v.summary.order_value;
      orderCurrency = orderCurrency || v.summary.currency;
    }
  });
  if (summary.orders) bits.push(plural('card.summary.orders', summary.orders, { value: fmt.money(orderTotal, orderCurrency) }));
  return h('header', { className: 'card-header' }, [
    h('div', { className: 'card-title-row' }, [
      h('h2', { className: 'card-name', testid: 'card-name', text: title }),
      closeButton,
    ]),
    identity.email
      ? h('div', { className: 'card-email', testid: 'card-email', text: identity.email })
      : h('div', { className: 'card-email card-muted', testid: 'card-email', text: '' }),
    h('div', { className: 'card-badges' }, [
      h('span', {
        className: 'card-segment',
        testid: 'card-segment',
        text: live ? segmentLabel(live.segment) : t('common.none'),
        data: { segment: live ? live.segment : 'none' },
      }),
      h('span', { className: 'card-score', testid: 'card-score', data: { score: live ? live.score : null } }, [
        h('span', { className: 'card-muted', text: t('card.score') + ' ' }),
        h('strong', { text: live && live.score != null ? fmt.number(live.score, 1) : t('common.none') }),
      ]),
    ]),
    h('p', { className: 'card-summary', testid: 'card-summary', text: bits.join(' · ') }),
  ]);
}

function breakdown(data) {
  var live = data.live;
  var entries = Object.keys((live && live.score_breakdown) || {}).map(function (k) {
    return [k, Number(live.score_breakdown[k]) || 0];
  }).filter(function (e) { return e[1] !== 0; });
  entries.sort(function (a, b) { return Math.abs(b[1]) - Math.abs(a[1]); });
  if (!live) return section('card.breakdown', 'card-breakdown', [empty('card.noScore')]);
  if (!entries.length) {
    // a score with no parts to show is not "no scored behaviour"
    return section('card.breakdown', 'card-breakdown', [empty(live.score > 0 ? 'card.breakdown.unknown' : 'card.breakdown.none')]);
  }
  var top = Math.max.apply(null, entries.map(function (e) { return Math.abs(e[1]); })) || 1;
  return section('card.breakdown', 'card-breakdown', [
    h('ul', { className: 'card-bars' }, entries.map(function (e) {
      var bar = h('span', { className: 'card-bar' + (e[1] < 0 ? ' card-bar-neg' : '') });
      bar.style.width = Math.max(4, Math.round(Math.abs(e[1]) / top * 100)) + '%';
      return h('li', { className: 'card-factor', testid: 'card-factor', data: { factor: e[0] } }, [
        h('span', { className: 'card-factor-name', text: factorLabel(e[0]) }),
        h('span', { className: 'card-bar-track' }, [bar]),
        h('span', { className: 'card-factor-points', text: (e[1] > 0 ? '+' : '') + fmt.number(e[1], 1) }),
      ]);
    })),
  ]);
}

function dl(pairs) {
  var list = h('dl', { className: 'card-dl' });
  pairs.forEach(function (p) {
    if (p[1] == null || p[1] === '') return;
    list.appendChild(h('dt', { text: p[0] }));
    list.appendChild(h('dd', { text: String(p[1]) }));
  });
  return list;
}

function source(data) {
  var s = data.source || {};
  var visits = s.visits || 0;
  var live = data.live || {};
  var device = [visitorDevice(live), live.os].filter(Boolean).join(' · ');
  return section('card.source', 'card-source', [
    h('p', { className: 'card-line' }, [
      h('strong', { testid: 'card-source-name', data: { landing: s.landing ? s.landing.kind : null }, text: visitorSource(s) }),
      ' · ',
      h('span', {
        testid: 'card-returning',
        data: { returning: s.returning ? 'true' : 'false' },
        text: s.returning ? t('card.returning') : t('card.new'),
      }),
      visits ? ' · ' + plural('card.visits', visits) : '',
    ]),
    device ? h('p', { className: 'card-line card-muted', testid: 'card-device', text: device }) : null,
    dl([
      [t('card.source.medium'), s.medium === 'referral' ? null : s.medium],
      [t('card.source.campaign'), s.campaign],
      [t('card.source.referrer'), s.referrer],
    ]),
  ]);
}

function hostOf(url) {
  try { return new URL(url).hostname; } catch (e) { return url; }
}

function traits(data) {
  var identity = data.identity || {};
  var all = identity.traits || {};
  var keys = Object.keys(all).filter(function (k) {
    return all[k] != null && all[k] !== '' && all[k] !== identity.email && all[k] !== identity.name;
  });
  // what the visitor told (a name, an e-mail given in the chat) identifies them as much as
  // an identify call's traits do
  var pairs = [[t('card.identity.name'), identity.name], [t('card.identity.email'), identity.email]];
  pairs = pairs.concat(keys.map(function (k) {
    var v = all[k];
    return [k, typeof v === 'boolean' ? (v ? '✓' : '✗') : v];
  }));
  if (!identity.name && !identity.email && !keys.length) return section('card.traits', 'card-traits', [empty('card.traits.none')]);
  // verified: the store's server vouched for the user id (docs/identity.md); otherwise what
  // the page or the visitor said, never shown as verified
  var badge = h('p', {
    className: 'card-line ' + (identity.verified ? 'card-verified' : 'card-muted'),
    testid: 'card-identity-verified',
    text: identity.verified ? t('card.identity.verified', { user: identity.verified_user_id }) : t('card.identity.unverified'),
  });
  badge.dataset.verified = identity.verified ? 'true' : 'false';
  // the e-mail and name the store vouched for, apart from anything the visitor typed
  var vouched = identity.verified ? [identity.verified_name, identity.verified_email].filter(Boolean) : [];
  var vouchedLine = vouched.length
    ? h('p', { className: 'card-line card-verified', testid: 'card-identity-verified-as', text: t('card.identity.verified_as', { who: vouched.join(' · ') }) })
    : null;
  return section('card.traits', 'card-traits', [badge, vouchedLine, dl(pairs)]);
}

function now(data) {
  var n = data.now || {};
  var cart = n.cart;
  var rows = [];
  if (n.url || n.title) {
    rows.push(h('p', { className: 'card-line', testid: 'card-now-page' }, [
      h('span', { className: 'card-muted', text: t('card.now.page') + ': ' }),
      pageLink(n.url, n.title),
    ]));
  }
  if (cart && cart.value) {
    rows.push(h('p', { className: 'card-line', testid: 'card-cart' }, [
      h('span', { className: 'card-muted', text: t('card.now.cart') + ': ' }),
      h('strong', { testid: 'card-cart-value', text: fmt.money(cart.value, cart.currency) }),
      cart.quantity ? ' · ' + plural('card.now.items', cart.quantity) : '',
    ]));
    if (cart.items && cart.items.length) {
      rows.push(h('ul', { className: 'card-items' }, cart.items.map(function (item) {
        return h('li', {}, [
          h('span', { text: (item.quantity > 1 ? item.quantity + ' × ' : '') + (item.name || item.product_id) }),
          h('span', { className: 'card-muted', text: fmt.money(item.price, cart.currency) }),
        ]);
      })));
    }
  } else {
    rows.push(h('p', { className: 'card-line card-muted', testid: 'card-cart', i18n: 'card.now.emptyCart' }));
  }
  return section('card.now', 'card-now', rows);
}

function eventText(e) {
  var d = e.detail || {};
  switch (e.type) {
    case 'product.viewed': {
      var p = d.product || {};
      return [
        h('span', { className: 'card-ev-main', text: p.name || p.product_id || e.title || '' }),
        h('span', { className: 'card-ev-value', text: fmt.money(p.price, e.currency) }),
      ];
    }
    case 'cart.updated':
    case 'checkout.started':
      return [
        h('span', { className: 'card-ev-main', text: plural('card.event.items', d.quantity) }),
        h('span', { className: 'card-ev-value', text: fmt.money(e.value, e.currency) }),
      ];
    case 'order.completed':
      return [
        h('span', { className: 'card-ev-main', text: t('card.event.order', { id: d.order_id || '' }) }),
        h('span', { className: 'card-ev-value', text: fmt.money(e.value, e.currency) }),
      ];
    case 'visitor.identified': {
      var tr = d.traits || {};
      return [h('span', { className: 'card-ev-main', text: tr.email || tr.name || d.user_id || '' })];
    }
    case 'custom.tracked':
      return [h('span', { className: 'card-ev-main', text: d.event || '' })];
    default:
      return [pageLink(e.url, e.title)];
  }
}

function eventLabel(type) {
  var k = 'card.event.' + type;
  return i18n.has(k) ? t(k) : type;
}

function visitSummary(v) {
  var s = v.summary || {};
  var bits = [summaryText(s.products, s.pages)];
  if (s.cart_value) bits.push(t('card.summary.cart', { value: fmt.money(s.cart_value, s.currency) }));
  if (s.orders) bits.push(plural('card.summary.orders', s.orders, { value: fmt.money(s.order_value, s.currency) }));
  return bits.join(' · ');
}

// A product page arrives as a page view and a product view of the same URL: the product
// view says more (name, price), so its page view is not listed a second time.
function shownEvents(events) {
  return events.filter(function (e, i) {
    if (e.type !== 'page.viewed' || !e.url) return true;
    var near = [events[i - 1], events[i + 1]];
    return !near.some(function (o) { return o && o.type === 'product.viewed' && o.url === e.url; });
  });
}

function history(slot) {
  var visits = allVisits(slot);
  var children = [];
  if (!visits.length) children.push(empty('card.history.none'));
  visits.forEach(function (v) {
    var from = v.campaign && v.campaign.source ? v.campaign.source : (v.referrer ? hostOf(v.referrer) : null);
    children.push(h('div', { className: 'card-visit', testid: 'card-visit', data: { session: v.session_id } }, [
      h('div', { className: 'card-visit-head' }, [
        h('strong', { text: t('card.visit', { date: fmt.dateTime(v.started_at) }) }),
        from ? h('span', { className: 'card-muted', text: ' · ' + from }) : null,
      ]),
      h('div', { className: 'card-visit-summary', testid: 'card-visit-summary', text: visitSummary(v) }),
      h('ol', { className: 'card-events' }, shownEvents(v.events).map(function (e) {
        return h('li', {
          className: 'card-event card-event-' + e.type.replace(/\./g, '-'),
          testid: 'card-event',
          data: { type: e.type, id: e.event_id },
        }, [
          h('time', { className: 'card-ev-time', text: fmt.time(e.occurred_at), attrs: { datetime: e.occurred_at } }),
          h('span', { className: 'card-ev-kind', text: eventLabel(e.type) }),
        ].concat(eventText(e)));
      })),
    ]));
  });
  if (slot.next) {
    children.push(h('button', {
      className: 'btn btn-ghost card-more',
      testid: 'card-more',
      i18n: 'card.more',
      attrs: { type: 'button' },
      on: { click: function () { loadOlder(slot); } },
    }));
  }
  return section('card.history', 'card-history', children);
}

// A conversation still going on (waiting or open) is not "past": it gets its own section.
function isCurrent(c) { return c.status === 'open' || c.status === 'queued'; }

function conversations(slot, data) {
  var all = data.conversations || [];
  var current = all.filter(isCurrent);
  var past = all.filter(function (c) { return !isCurrent(c); });
  var sections = [];
  if (current.length) sections.push(section('card.conversations.current', 'card-current-conversation', current.map(function (c) { return conversationItem(slot, c); })));
  if (!past.length) {
    sections.push(section('card.conversations', 'card-conversations', [empty(current.length ? 'card.conversations.noPast' : 'card.conversations.none')]));
  } else {
    sections.push(section('card.conversations', 'card-conversations', past.map(function (c) { return conversationItem(slot, c); })));
  }
  return sections;
}

function conversationItem(slot, c) {
  {
    var open = !!slot.expanded[c.id];
    var current = slot.conversationId === c.id;
    var statusKey = 'card.conversation.status.' + c.status;
    var toggle = h('button', {
      className: 'card-conv-toggle',
      testid: 'card-conversation-toggle',
      attrs: { type: 'button', 'aria-expanded': open ? 'true' : 'false' },
      on: {
        click: function () {
          slot.expanded[c.id] = !slot.expanded[c.id];
          render(slot);
        },
      },
    }, [
      h('span', { className: 'card-conv-date', text: fmt.dateTime(c.created_at) }),
      h('span', { className: 'card-conv-agent', text: c.agent ? c.agent.name : t('card.conversation.noAgent') }),
      h('span', { className: 'card-conv-status', text: i18n.has(statusKey) ? t(statusKey) : c.status }),
      h('span', { className: 'card-muted', testid: 'card-conversation-count', text: plural('card.conversation.messages', c.messages.length) }),
      current ? h('span', { className: 'card-current', i18n: 'card.conversation.current' }) : null,
    ]);
    var transcript = open
      ? h('ol', { className: 'card-transcript', testid: 'card-transcript' }, c.messages.map(function (m) {
        var who = m.author === 'agent' ? (m.agent_name || '') : t('card.author.' + m.author);
        return h('li', { className: 'card-msg card-msg-' + m.author, data: { author: m.author } }, [
          h('div', { className: 'card-msg-meta' }, [
            h('strong', { text: who }),
            h('time', { className: 'card-muted', text: ' ' + fmt.time(m.created_at) }),
          ]),
          h('div', { className: 'card-msg-text', text: m.text }),
        ]);
      }))
      : null;
    return h('div', {
      className: 'card-conversation' + (current ? ' is-current' : ''),
      testid: 'card-conversation',
      data: { id: c.id, status: c.status },
    }, [toggle, transcript]);
  }
}

function leads(data) {
  var list = data.leads || [];
  if (!list.length) return section('card.leads', 'card-leads', [empty('card.leads.none')]);
  return section('card.leads', 'card-leads', [
    h('ul', { className: 'card-lead-list' }, list.map(function (l) {
      return h('li', { className: 'card-lead', testid: 'card-lead', data: { validation: l.validation } }, [
        h('span', {
          className: 'card-lead-validation',
          text: i18n.has('card.validation.' + l.validation) ? t('card.validation.' + l.validation) : l.validation,
        }),
        h('span', { className: 'card-muted', text: ' · ' + fmt.date(l.created_at) + (l.agent ? ' · ' + l.agent.name : '') }),
        l.note ? h('div', { className: 'card-lead-note', text: l.note }) : null,
      ]);
    })),
  ]);
}

// ---------------------------------------------------------------- rendering

function render(slot) {
  var host = slot.name === 'panel' ? $('card-panel') : drawerNode && drawerNode.querySelector('.card-drawer-body');
  if (!host) return;
  var scroll = slot.root ? slot.root.scrollTop : 0;
  var children;
  if (slot.data) {
    var d = slot.data;
    children = [header(slot, d), breakdown(d), source(d), now(d), traits(d), history(slot)].concat(conversations(slot, d), [leads(d)]);
  } else if (slot.error) {
    var notFound = slot.error.status === 404;
    children = [
      slot.name === 'drawer' ? h('button', { className: 'btn btn-ghost card-close', testid: 'card-close', i18n: 'card.close', attrs: { type: 'button' }, on: { click: hideCard } }) : null,
      h('p', {
        className: notFound ? 'card-empty' : 'form-error',
        testid: 'card-error',
        text: notFound ? t('card.notFound') : t('card.error', { error: slot.error.message || '' }),
      }),
      notFound ? null : h('button', { className: 'btn', testid: 'card-retry', i18n: 'card.retry', attrs: { type: 'button' }, on: { click: function () { load(slot); } } }),
    ];
  } else {
    children = [h('p', { className: 'card-empty', testid: 'card-loading', i18n: 'card.loading' })];
  }
  var root = h('div', {
    className: 'visitor-card',
    testid: 'visitor-card',
    data: { visitor: slot.visitorId, state: slot.data ? 'ready' : (slot.error ? 'error' : 'loading') },
  }, children);
  clear(host);
  host.appendChild(root);
  slot.root = host;
  host.scrollTop = scroll;
}

function reset(slot) {
  slot.visitorId = null;
  slot.conversationId = null;
  slot.data = null;
  slot.older = [];
  slot.next = null;
  slot.error = null;
  slot.expanded = {};
  slot.loadedAt = 0;
  slot.request++;
}

function open(slot, visitorId, conversationId) {
  if (slot.visitorId !== visitorId) {
    reset(slot);
    slot.visitorId = visitorId;
    if (conversationId) slot.expanded[conversationId] = false;
  }
  slot.conversationId = conversationId || null;
  render(slot);
  // chats/conversation.js re-announces the open conversation on every reload of it: refetch at most
  // every few seconds (the timer below keeps the card fresh anyway)
  if (!slot.data || Date.now() - slot.loadedAt > 3000) load(slot, !!slot.data);
  schedule();
}

// Keep the visible cards fresh while the agent works (history grows as the visitor browses);
// a card with older pages loaded is left as it is, so nothing moves under the agent's eyes.
function schedule() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(function () {
    [panel, drawer].forEach(function (slot) {
      if (!slot.visitorId || slot.older.length || document.hidden) return;
      if (slot.name === 'panel' && $('card-panel').hidden) return;
      load(slot, true);
    });
    if (panel.visitorId || drawer.visitorId) schedule();
  }, REFRESH_MS);
}

// ---------------------------------------------------------------- the panel and the drawer

function showPanel(conv) {
  var node = $('card-panel');
  if (!node || !conv || !conv.visitor_id) return;
  node.hidden = false;
  open(panel, conv.visitor_id, conv.id);
}

function hidePanel() {
  var node = $('card-panel');
  reset(panel);
  if (node) { clear(node); node.hidden = true; }
}

function onKey(e) {
  if (e.key === 'Escape' && drawerNode) hideCard();
}

export function showCard(visitorId) {
  if (!visitorId) return;
  if (!drawerNode) {
    drawerNode = h('div', { className: 'card-drawer', testid: 'card-drawer', attrs: { role: 'dialog', 'aria-modal': 'true' } }, [
      h('div', { className: 'card-drawer-backdrop', on: { click: hideCard } }),
      h('div', { className: 'card-drawer-body' }),
    ]);
    document.body.appendChild(drawerNode);
    document.addEventListener('keydown', onKey);
  }
  open(drawer, visitorId, null);
}

export function hideCard() {
  if (drawerNode) {
    document.removeEventListener('keydown', onKey);
    drawerNode.parentNode.removeChild(drawerNode);
    drawerNode = null;
    reset(drawer);
    drawer.root = null;
    return;
  }
  hidePanel();
}

on('conversation:open', showPanel);
on('conversation:none', hidePanel);
on('reset', function () {
  if (drawerNode) hideCard();
  hidePanel();
});
on('locale', function () {
  if (panel.visitorId) render(panel);
  if (drawer.visitorId) render(drawer);
});
