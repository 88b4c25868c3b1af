/* Beckon console: the live visitor list (view "visitors").
 *
 * The server sends one `visitors.snapshot` on subscribe, then `visitors.delta` frames
 * ({upsert: [rows], remove: [ids]}, each visitor at most once, a few times a second). With
 * thousands of visitors the page must stay smooth, so:
 *   - the filtered, sorted order is kept as an array and patched per changed visitor
 *     (binary search out, binary search in), never re-sorted per delta;
 *   - rows are virtualised: a fixed row height, and only the visible window (plus a few)
 *     exists in the DOM, as a pool of row elements that are reused;
 *   - deltas are queued and applied in one requestAnimationFrame batch; a row's cells are
 *     rewritten only when its data changed; time on site ticks once a second, visible rows only.
 * Timings for bench/console.py: window.__beckonLive = {updates: [ms from frame receipt to
 * DOM updated, per applied delta], frames: [ms between animation frames], longTasks: [ms]}.
 */
import { showCard } from './card.js';
import { api } from './core/api.js';
import { clear, h } from './core/dom.js';
import { on } from './core/events.js';
import { fmt, visitorDevice, visitorLabel, visitorSource } from './core/format.js';
import { i18n, plural, t } from './core/i18n.js';
import { me } from './core/me.js';
import { send } from './socket.js';
import { views } from './core/views.js';

var ROW_H = 40;           // px; keep in step with .live-row in live.css
var OVERSCAN = 6;         // rows rendered above and below the visible window
var KEEP_SAMPLES = 20000; // timings kept for the bench (oldest dropped)

// sortable columns: key -> how a row compares (ascending)
var COLUMNS = [
  { key: 'visitor', label: 'live.col.visitor', value: function (r) { return visitorLabel(r.label, r.name || r.id).toLowerCase(); } },
  { key: 'page', label: 'live.col.page', value: function (r) { return r.title || r.url || ''; } },
  { key: 'time', label: 'live.col.time', value: function (r) { return -r.started; } },
  { key: 'source', label: 'live.col.source', value: function (r) { return visitorSource(r) + ' ' + (r.campaign || ''); } },
  { key: 'cart', label: 'live.col.cart', value: function (r) { return r.cart || 0; } },
  { key: 'score', label: 'live.col.score', value: function (r) { return r.score || 0; } },
  { key: 'status', label: 'live.col.status', value: function (r) { return (r.chatting ? 2 : 0) + (r.invited ? 1 : 0); } },
];
var BY_KEY = {};
COLUMNS.forEach(function (c) { BY_KEY[c.key] = c; });

var perf = window.__beckonLive = { updates: [], frames: [], longTasks: [], applied: 0, snapshots: 0, rows: 0, visibleRows: 0 };

var state = {
  shown: false,
  subscribed: false,
  loaded: false,
  rows: new Map(),     // id -> row (as the server sent it)
  order: [],           // ids passing the filters, sorted
  sort: { key: 'score', dir: -1 },
  filters: { text: '', minCart: null, hot: false, checkout: false, returning: false, uninvited: false },
  queue: [],           // [{frame, at}] received, not yet applied
  scheduled: false,
  dirty: false,        // the visible window needs re-rendering
};
var ui = null;         // DOM nodes, built on first show

// ---------------------------------------------------------------- order and filters

function compare(a, b) {
  var col = BY_KEY[state.sort.key];
  var x = col.value(a);
  var y = col.value(b);
  if (x < y) return -state.sort.dir;
  if (x > y) return state.sort.dir;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function passes(r) {
  var f = state.filters;
  if (f.minCart != null && !((r.cart || 0) >= f.minCart)) return false;
  if (f.hot && r.segment !== 'hot') return false;
  if (f.checkout && r.page_type !== 'checkout' && r.page_type !== 'cart') return false;
  if (f.returning && !r.returning) return false;
  if (f.uninvited && (r.invited || r.chatting)) return false;
  if (f.text) {
    if (r._text === undefined) {
      var label = r.label || {};
      r._text = [r.id, r.name, label.en, label.fi, r.browser, r.url, r.title, r.source, r.medium, r.campaign, r.product]
        .filter(Boolean).join(' ').toLowerCase();
    }
    if (r._text.indexOf(f.text) < 0) return false;
  }
  return true;
}

// the index of `row` in state.order, or where it would go
function position(row) {
  var lo = 0;
  var hi = state.order.length;
  while (lo < hi) {
    var mid = (lo + hi) >>> 1;
    if (compare(state.rows.get(state.order[mid]), row) < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function takeOut(old) {
  var i = position(old);
  if (state.order[i] === old.id) { state.order.splice(i, 1); return; }
  var j = state.order.indexOf(old.id); // only if an order key changed under us
  if (j >= 0) state.order.splice(j, 1);
}

function rebuildOrder() {
  var ids = [];
  state.rows.forEach(function (r) { if (passes(r)) ids.push(r); });
  ids.sort(compare);
  state.order = ids.map(function (r) { return r.id; });
  state.dirty = true;
}

// ---------------------------------------------------------------- frames

function applySnapshot(rows) {
  state.rows = new Map();
  for (var i = 0; i < rows.length; i++) state.rows.set(rows[i].id, rows[i]);
  state.loaded = true;
  perf.snapshots += 1;
  rebuildOrder();
}

function applyDelta(frame) {
  var removes = frame.remove || [];
  for (var i = 0; i < removes.length; i++) {
    var gone = state.rows.get(removes[i]);
    if (!gone) continue;
    if (passes(gone)) takeOut(gone);
    state.rows.delete(removes[i]);
  }
  var ups = frame.upsert || [];
  for (var k = 0; k < ups.length; k++) {
    var row = ups[k];
    var old = state.rows.get(row.id);
    if (old && passes(old)) takeOut(old);
    state.rows.set(row.id, row);
    if (passes(row)) state.order.splice(position(row), 0, row.id);
  }
  state.dirty = true;
}

function receive(frame) {
  state.queue.push({ frame: frame, at: performance.now() });
  if (!state.scheduled) {
    state.scheduled = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  state.scheduled = false;
  var batch = state.queue;
  state.queue = [];
  for (var i = 0; i < batch.length; i++) {
    var f = batch[i].frame;
    if (f.t === 'visitors.snapshot') applySnapshot(f.visitors || []);
    else if (state.loaded) applyDelta(f);
  }
  if (state.shown) render();
  var done = performance.now();
  for (var j = 0; j < batch.length; j++) {
    if (batch[j].frame.t === 'visitors.delta') {
      perf.updates.push(done - batch[j].at);
      perf.applied += 1;
    }
  }
  if (perf.updates.length > KEEP_SAMPLES) perf.updates.splice(0, perf.updates.length - KEEP_SAMPLES);
}

on('frame:visitors.snapshot', function (f) { if (state.subscribed) receive(f); });
on('frame:visitors.delta', function (f) { if (state.subscribed) receive(f); });

function subscribe() {
  if (send({ t: 'visitors.subscribe' }) !== false) state.subscribed = true;
}

function unsubscribe() {
  if (state.subscribed) send({ t: 'visitors.unsubscribe' });
  state.subscribed = false;
  state.queue = [];
}

// ---------------------------------------------------------------- rendering

function build(root) {
  clear(root);
  var search = h('input', {
    className: 'live-search', testid: 'live-filter-search',
    attrs: { type: 'search', 'data-i18n-placeholder': 'live.search', placeholder: t('live.search'), autocomplete: 'off' },
    on: { input: function () { state.filters.text = search.value.trim().toLowerCase(); refilter(); } },
  });
  var minCart = h('input', {
    className: 'live-min-cart', testid: 'live-filter-cart',
    attrs: { type: 'number', min: '0', step: '1', inputmode: 'decimal', 'aria-label': t('live.min_cart') },
    on: {
      input: function () {
        var v = parseFloat(minCart.value);
        state.filters.minCart = isFinite(v) ? v : null;
        refilter();
      },
    },
  });
  function chip(name, label) {
    var node = h('button', {
      className: 'live-chip', testid: 'live-filter-' + name, i18n: label,
      attrs: { type: 'button', 'aria-pressed': 'false' },
      on: {
        click: function () {
          state.filters[name] = !state.filters[name];
          node.setAttribute('aria-pressed', state.filters[name] ? 'true' : 'false');
          refilter();
        },
      },
    });
    return node;
  }
  var chips = [chip('hot', 'live.filter.hot'), chip('checkout', 'live.filter.checkout'),
    chip('returning', 'live.filter.returning'), chip('uninvited', 'live.filter.uninvited')];
  var clearBtn = h('button', {
    className: 'btn btn-ghost live-clear', testid: 'live-filter-clear', i18n: 'live.filter.clear',
    attrs: { type: 'button' },
    on: {
      click: function () {
        state.filters = { text: '', minCart: null, hot: false, checkout: false, returning: false, uninvited: false };
        search.value = '';
        minCart.value = '';
        chips.forEach(function (c) { c.setAttribute('aria-pressed', 'false'); });
        refilter();
      },
    },
  });
  var count = h('span', { className: 'live-count', testid: 'live-count', attrs: { role: 'status' } });
  var header = h('div', { className: 'live-row live-head', attrs: { role: 'row' } }, COLUMNS.map(function (c) {
    return h('button', {
      className: 'live-cell live-sort live-c-' + c.key, testid: 'live-sort-' + c.key,
      attrs: { type: 'button', role: 'columnheader', 'aria-sort': 'none' },
      on: { click: function () { sortBy(c.key); } },
    }, [h('span', { i18n: c.label }), h('span', { className: 'live-arrow', attrs: { 'aria-hidden': 'true' } })]);
  }).concat([h('span', { className: 'live-cell live-c-action' })]));
  var spacer = h('div', { className: 'live-spacer', testid: 'live-rows' });
  var empty = h('p', { className: 'live-empty', testid: 'live-empty', i18n: 'live.empty', attrs: { hidden: true } });
  var loading = h('p', { className: 'live-empty', testid: 'live-loading', i18n: 'live.loading' });
  var scroller = h('div', {
    className: 'live-scroll', attrs: { role: 'rowgroup' },
    on: { scroll: function () { state.dirty = true; render(); } },
  }, [spacer, empty, loading]);
  root.appendChild(h('div', { className: 'live' }, [
    h('div', { className: 'live-bar' }, [
      h('h2', { className: 'live-title', i18n: 'live.title' }),
      count,
    ]),
    h('div', { className: 'live-filters' }, [
      search,
      h('label', { className: 'live-cart-label' }, [h('span', { i18n: 'live.min_cart' }), minCart]),
    ].concat(chips, [clearBtn])),
    h('div', { className: 'live-table', attrs: { role: 'table' } }, [header, scroller]),
  ]));
  ui = { root: root, count: count, header: header, scroller: scroller, spacer: spacer, empty: empty, loading: loading, pool: [] };
  window.addEventListener('resize', function () { if (state.shown) { state.dirty = true; render(); } });
}

function makeRow() {
  var cells = {};
  var node = h('div', { className: 'live-row', testid: 'live-row', attrs: { role: 'row', tabindex: '0' } });
  ['visitor', 'page', 'time', 'source', 'cart', 'score', 'status'].forEach(function (k) {
    cells[k] = h('div', { className: 'live-cell live-c-' + k, attrs: { role: 'cell' } });
    node.appendChild(cells[k]);
  });
  var main = {
    who: h('span', { className: 'live-main', testid: 'live-label' }), sub: h('span', { className: 'live-sub', testid: 'live-device' }),
    page: h('span', { className: 'live-main' }), product: h('span', { className: 'live-sub' }),
    src: h('span', { className: 'live-main', testid: 'live-source' }), camp: h('span', { className: 'live-sub' }),
    cart: h('span', { className: 'live-main' }), items: h('span', { className: 'live-sub' }),
    score: h('span', { className: 'live-score' }), seg: h('span', { className: 'live-seg' }),
    invited: h('span', { className: 'live-badge is-invited', testid: 'live-invited', i18n: 'live.invited' }),
    chatting: h('span', { className: 'live-badge is-chatting', testid: 'live-chatting', i18n: 'live.chatting' }),
  };
  cells.visitor.append(main.who, main.sub);
  cells.page.append(main.page, main.product);
  cells.source.append(main.src, main.camp);
  cells.cart.append(main.cart, main.items);
  cells.score.append(main.score, main.seg);
  cells.status.append(main.invited, main.chatting);
  var invite = h('button', {
    className: 'btn live-invite', testid: 'live-invite', i18n: 'live.invite', attrs: { type: 'button' },
    on: { click: function (e) { e.stopPropagation(); if (slot.row) openInvite(slot.row); } },
  });
  node.appendChild(h('div', { className: 'live-cell live-c-action' }, [invite]));
  var slot = { node: node, cells: cells, parts: main, invite: invite, row: null, index: -1, tos: '' };
  node.addEventListener('click', function () {
    if (slot.row) showCard(slot.row.id);
  });
  node.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && slot.row) showCard(slot.row.id);
  });
  return slot;
}

function pathOf(url) {
  if (!url) return '';
  var m = /^[a-z]+:\/\/[^/]+(\/[^?#]*)?/i.exec(url);
  return m ? (m[1] || '/') : url;
}

function fill(slot, r) {
  var p = slot.parts;
  var who = visitorLabel(r.label, r.name || r.id);
  var device = visitorDevice(r);
  var visit = r.returning ? t('live.visit', { n: r.sessions }) : t('live.newShort');
  slot.node.setAttribute('data-visitor', r.id);
  slot.node.setAttribute('data-segment', r.segment || '');
  p.who.textContent = who;
  p.who.title = who + ' · ' + r.id;
  p.sub.textContent = [device, visit].filter(Boolean).join(' · ');
  p.sub.title = [device, r.os, r.returning ? t('live.returning', { n: r.sessions }) : t('live.new')].filter(Boolean).join(' · ');
  p.page.textContent = r.title || pathOf(r.url) || t('common.none');
  p.page.title = r.url || '';
  p.product.textContent = r.product && r.product !== r.title ? r.product : pathOf(r.url);
  p.src.textContent = visitorSource(r);
  p.src.setAttribute('data-landing', (r.landing && r.landing.kind) || '');
  p.camp.textContent = [r.medium === 'referral' ? null : r.medium, r.campaign].filter(Boolean).join(' · ');
  p.cart.textContent = r.cart > 0 ? fmt.money(r.cart, r.currency || 'EUR') : t('common.none');
  p.items.textContent = r.items > 0 ? plural('live.items', r.items) : '';
  p.score.textContent = fmt.number(r.score, 0);
  p.seg.textContent = t('live.segment.' + r.segment) === 'live.segment.' + r.segment ? r.segment : t('live.segment.' + r.segment);
  p.seg.className = 'live-seg seg-' + (r.segment || 'cold');
  p.invited.hidden = !r.invited;
  p.chatting.hidden = !r.chatting;
  slot.invite.disabled = !!r.chatting;
  slot.row = r;
  slot.tos = '';
}

function tick(slot, nowS) {
  var text = fmt.duration(Math.max(0, nowS - slot.row.started));
  if (text !== slot.tos) { slot.cells.time.textContent = text; slot.tos = text; }
}

function render() {
  if (!ui || !state.dirty) return;
  state.dirty = false;
  var n = state.order.length;
  ui.spacer.style.height = (n * ROW_H) + 'px';
  var viewH = ui.scroller.clientHeight || 600;
  var first = Math.max(0, Math.floor(ui.scroller.scrollTop / ROW_H) - OVERSCAN);
  var want = Math.min(n - first, Math.ceil(viewH / ROW_H) + 2 * OVERSCAN);
  if (want < 0) want = 0;
  while (ui.pool.length < want) {
    var made = makeRow();
    ui.pool.push(made);
    ui.spacer.appendChild(made.node);
  }
  var nowS = Date.now() / 1000;
  for (var i = 0; i < ui.pool.length; i++) {
    var slot = ui.pool[i];
    if (i >= want) {
      if (!slot.node.hidden) {
        slot.node.hidden = true;
        slot.node.removeAttribute('data-visitor');
        slot.row = null;
        slot.index = -1;
      }
      continue;
    }
    var index = first + i;
    var row = state.rows.get(state.order[index]);
    if (slot.index !== index) {
      slot.node.style.transform = 'translateY(' + (index * ROW_H) + 'px)';
      slot.index = index;
    }
    if (slot.row !== row) fill(slot, row);
    if (slot.node.hidden) slot.node.hidden = false;
    tick(slot, nowS);
  }
  perf.rows = state.rows.size;
  perf.visibleRows = want;
  ui.count.textContent = t('live.count', { shown: fmt.number(n), total: fmt.number(state.rows.size) });
  ui.count.setAttribute('data-shown', String(n));
  ui.count.setAttribute('data-total', String(state.rows.size));
  ui.loading.hidden = state.loaded;
  ui.empty.hidden = !state.loaded || n > 0;
}

function refilter() {
  rebuildOrder();
  ui.scroller.scrollTop = 0;
  render();
}

function sortBy(key) {
  if (state.sort.key === key) state.sort.dir = -state.sort.dir;
  else state.sort = { key: key, dir: key === 'visitor' || key === 'page' || key === 'source' ? 1 : -1 };
  renderSortHeaders();
  rebuildOrder();
  render();
}

function renderSortHeaders() {
  ui.header.querySelectorAll('.live-sort').forEach(function (btn) {
    var key = btn.getAttribute('data-testid').replace('live-sort-', '');
    var active = key === state.sort.key;
    btn.setAttribute('aria-sort', active ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
    btn.querySelector('.live-arrow').textContent = active ? (state.sort.dir > 0 ? '▲' : '▼') : '';
  });
}

// time on site ticks for the rows in view, once a second
setInterval(function () {
  if (!state.shown || !ui) return;
  var nowS = Date.now() / 1000;
  for (var i = 0; i < ui.pool.length; i++) if (ui.pool[i].row) tick(ui.pool[i], nowS);
}, 1000);

// frame times, while the view is shown (bench/console.py reads them)
var lastFrame = 0;
function measureFrames(now) {
  if (!state.shown) { lastFrame = 0; return; }
  if (lastFrame) {
    perf.frames.push(now - lastFrame);
    if (perf.frames.length > KEEP_SAMPLES) perf.frames.splice(0, perf.frames.length - KEEP_SAMPLES);
  }
  lastFrame = now;
  requestAnimationFrame(measureFrames);
}
if (window.PerformanceObserver) {
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) { perf.longTasks.push(e.duration); });
    }).observe({ entryTypes: ['longtask'] });
  } catch (e) { /* not supported: frame times still tell */ }
}

// ---------------------------------------------------------------- personal invitation

var dialog = null;

function defaultMessage(r) {
  var agent = (me.agent && me.agent.name) || '';
  if (r.product) return t('invite.product', { agent: agent, product: r.product });
  if (r.cart > 0) return t('invite.cart', { agent: agent, cart: fmt.money(r.cart, r.currency || 'EUR') });
  return t('invite.default', { agent: agent });
}

function closeInvite() {
  if (dialog) { dialog.remove(); dialog = null; }
}

function openInvite(r) {
  closeInvite();
  var agent = me.agent || {};
  var message = h('textarea', {
    className: 'invite-message', testid: 'invite-message',
    attrs: { rows: '4', maxlength: '1000', 'aria-label': t('invite.message') },
  });
  message.value = defaultMessage(r);
  var error = h('p', { className: 'form-error', testid: 'invite-error', attrs: { role: 'alert', hidden: true } });
  var send = h('button', { className: 'btn btn-primary', testid: 'invite-send', i18n: 'invite.send', attrs: { type: 'submit' } });
  var avatar = agent.avatar_url
    ? h('img', { className: 'invite-avatar', testid: 'invite-avatar', attrs: { src: agent.avatar_url, alt: '' } })
    : h('span', { className: 'invite-avatar invite-initial', testid: 'invite-avatar', text: (agent.name || '?').charAt(0) });
  var form = h('form', {
    className: 'invite-dialog', testid: 'invite-dialog', attrs: { role: 'dialog', 'aria-modal': 'true' },
    on: {
      submit: function (e) {
        e.preventDefault();
        error.hidden = true;
        send.disabled = true;
        send.textContent = t('invite.sending');
        api('POST', '/visitors/' + encodeURIComponent(r.id) + '/invite', { message: message.value }).then(function () {
          var current = state.rows.get(r.id);
          if (current) { // shown at once; the next delta from the server agrees
            var marked = Object.assign({}, current, { invited: true });
            if (passes(current)) takeOut(current);
            state.rows.set(r.id, marked);
            if (passes(marked)) state.order.splice(position(marked), 0, r.id);
            state.dirty = true;
            render();
          }
          closeInvite();
        }, function (err) {
          send.disabled = false;
          send.textContent = t('invite.send');
          var key = 'invite.error.' + (err.code || 'other');
          error.textContent = i18n.has(key) ? t(key) : t('invite.error.other', { detail: err.detail || err.message });
          error.hidden = false;
        });
      },
    },
  }, [
    h('h3', { className: 'invite-title', text: t('invite.title', { visitor: visitorLabel(r.label, r.name || r.id) }) }),
    h('div', { className: 'invite-from' }, [avatar, h('span', { testid: 'invite-agent', text: t('invite.as', { name: agent.name || '' }) })]),
    h('label', { className: 'field' }, [h('span', { i18n: 'invite.message' }), message]),
    error,
    h('div', { className: 'invite-actions' }, [
      h('button', { className: 'btn btn-ghost', testid: 'invite-cancel', i18n: 'common.cancel', attrs: { type: 'button' }, on: { click: closeInvite } }),
      send,
    ]),
  ]);
  dialog = h('div', {
    className: 'invite-backdrop', testid: 'invite-backdrop',
    on: { click: function (e) { if (e.target === dialog) closeInvite(); }, keydown: function (e) { if (e.key === 'Escape') closeInvite(); } },
  }, [form]);
  document.body.appendChild(dialog);
  message.focus();
}

// ---------------------------------------------------------------- the view

views.register('visitors', {
  label: 'nav.visitors',
  onShow: function () {
    if (!ui) { build(views.container('visitors')); renderSortHeaders(); }
    state.shown = true;
    state.dirty = true;
    subscribe();
    render();
    requestAnimationFrame(measureFrames);
  },
  onHide: function () {
    state.shown = false;
    unsubscribe();
    closeInvite();
  },
});

on('connected', function () { if (state.shown) subscribe(); });
on('locale', function () {
  if (!ui) return;
  if (ui.pool) ui.pool.forEach(function (s) { s.row = null; });
  state.dirty = true;
  render();
});
on('reset', function () {
  state.shown = false;
  state.subscribed = false;
  state.loaded = false;
  state.rows = new Map();
  state.order = [];
  closeInvite();
});
