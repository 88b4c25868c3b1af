/* Beckon agent console (basic). Protocol: docs/chat.md, "Agent edge".
 *
 * Plain ES2017, no build step, served under a strict CSP (no inline script or style).
 * Every string that comes from the server is put into the page with textContent or
 * createTextNode, never parsed as HTML: visitors control message text, e-mails, ids.
 */
'use strict';

(function () {
  var t = Beckon.t;
  Beckon.i18n.add('en', {
    'login.sub': 'Agent console',
    'login.email': 'E-mail',
    'login.password': 'Password',
    'login.submit': 'Log in',
    'login.missing': 'Enter your e-mail and password.',
    'login.wrong': 'Wrong e-mail or password.',
    'login.ended': 'Your session has ended. Please log in again.',
    'login.unreachable': 'The server cannot be reached. Reload to try again.',
    'top.logout': 'Log out',
    'top.load': 'open chats / maximum',
    'title': 'Beckon console',
    'ws.connecting': 'Connecting…',
    'ws.offline': 'Offline',
    'ws.reconnecting': 'Reconnecting…',
    'ws.live': 'Live',
    'status.online': 'Online',
    'status.away': 'Away',
    'status.offline': 'Offline',
    'status.onlineTitle': 'You receive new chats. Click to go away.',
    'status.awayTitle': 'Click to go online.',
    'status.failed': 'Could not change status: {error}',
    'chats.waiting': 'Waiting',
    'chats.mine': 'My conversations',
    'chats.queueEmpty': 'Nobody is waiting.',
    'chats.mineEmpty': 'No open conversations.',
    'chats.placeholder': 'Select a conversation, or pick one up from the waiting list.',
    'chats.close': 'Close',
    'chats.visitorTyping': 'Visitor is typing',
    'chats.typing': 'typing…',
    'chats.pickup': 'Pick up',
    'chats.visitor': 'Visitor',
    'chats.visitorId': 'Visitor {id}',
    'chats.agent': 'Agent',
    'chats.team': 'Team {team}',
    'chats.with': 'with {name}',
    'chats.loading': 'Loading…',
    'chats.listFailed': 'Could not load conversations: {error}',
    'chats.loadFailed': 'Could not load the conversation: {error}',
    'chats.gone': 'That conversation no longer exists.',
    'chats.closeFailed': 'Could not close: {error}',
    'chats.notice.queued': 'This visitor is waiting. Pick the conversation up to reply.',
    'chats.notice.closed': 'This conversation is closed.',
    'chats.notice.offline': 'The visitor left this message while nobody was online.',
    'chats.notice.other': 'Another agent handles this conversation now.',
    'chats.notice.otherNamed': 'Another agent ({name}) handles this conversation now.',
    'conv.status.open': 'open',
    'conv.status.queued': 'waiting',
    'conv.status.closed': 'closed',
    'conv.status.offline': 'offline',
    'msg.sending': 'sending…',
    'msg.notSent': 'not sent',
    'msg.retry': 'Retry',
    'msg.failed': 'Message not sent: {error}',
    'composer.reply': 'Reply',
    'composer.note': 'Private note',
    'composer.placeholder': 'Type a reply — Enter sends, Shift+Enter for a new line, / for canned replies',
    'composer.notePlaceholder': 'A note only agents see — Enter saves it',
    'composer.send': 'Send',
    'composer.addNote': 'Add note',
    'note.label': 'Note — only agents see this',
    'note.failed': 'Could not save the note: {error}',
    'timeline.invitation': 'Invitation',
    'timeline.rule': 'Invitation · rule “{rule}”',
    'timeline.personal': 'Personal invitation',
    'timeline.openingTitle': 'The invitation that started this chat: the visitor saw these words as the agent’s first.',
    'timeline.toAgent': '{from} → {to}',
    'timeline.toTeam': '{from} → team {team}',
    'timeline.took': '{name} took it',
    'timeline.queue': 'Waiting list',
    'timeline.by': 'by {name}',
    'timeline.transferTitle': 'Transfer — only agents see this',
    'timeline.noteLabel': 'Transfer note — only agents see this',
    'error.generic': 'Error',
    'shortcuts.open': 'Keyboard shortcuts (?)',
    'shortcuts.title': 'Keyboard shortcuts',
    'shortcuts.next': 'Next conversation',
    'shortcuts.prev': 'Previous conversation',
    'shortcuts.nth': 'Conversation 1–9 in My conversations',
    'shortcuts.send': 'Send (also Enter; Shift+Enter for a new line)',
    'shortcuts.canned': 'Canned replies: type / and a shortcut, ↑/↓ to choose, Enter to insert',
    'shortcuts.note': 'Switch between reply and private note',
    'shortcuts.focus': 'Go to the reply box',
    'shortcuts.escape': 'Close a popup or this help',
    'shortcuts.help': 'Show this help',
  });
  Beckon.i18n.add('fi', {
    'login.sub': 'Agenttikonsoli',
    'login.email': 'Sähköposti',
    'login.password': 'Salasana',
    'login.submit': 'Kirjaudu',
    'login.missing': 'Anna sähköpostiosoite ja salasana.',
    'login.wrong': 'Väärä sähköposti tai salasana.',
    'login.ended': 'Istuntosi on päättynyt. Kirjaudu uudelleen.',
    'login.unreachable': 'Palvelimeen ei saada yhteyttä. Yritä uudelleen lataamalla sivu.',
    'top.logout': 'Kirjaudu ulos',
    'top.load': 'avoimet keskustelut / enintään',
    'title': 'Beckon-konsoli',
    'ws.connecting': 'Yhdistetään…',
    'ws.offline': 'Ei yhteyttä',
    'ws.reconnecting': 'Yhdistetään uudelleen…',
    'ws.live': 'Yhteys',
    'status.online': 'Paikalla',
    'status.away': 'Poissa',
    'status.offline': 'Offline',
    'status.onlineTitle': 'Saat uusia keskusteluja. Napsauta, kun lähdet.',
    'status.awayTitle': 'Napsauta, niin olet paikalla.',
    'status.failed': 'Tilaa ei voitu vaihtaa: {error}',
    'chats.waiting': 'Jonossa',
    'chats.mine': 'Omat keskusteluni',
    'chats.queueEmpty': 'Kukaan ei odota.',
    'chats.mineEmpty': 'Ei avoimia keskusteluja.',
    'chats.placeholder': 'Valitse keskustelu tai ota jonosta uusi.',
    'chats.close': 'Päätä',
    'chats.visitorTyping': 'Kävijä kirjoittaa',
    'chats.typing': 'kirjoittaa…',
    'chats.pickup': 'Ota',
    'chats.visitor': 'Kävijä',
    'chats.visitorId': 'Kävijä {id}',
    'chats.agent': 'Agentti',
    'chats.team': 'Tiimi {team}',
    'chats.with': 'hoitaa {name}',
    'chats.loading': 'Ladataan…',
    'chats.listFailed': 'Keskusteluja ei voitu ladata: {error}',
    'chats.loadFailed': 'Keskustelua ei voitu ladata: {error}',
    'chats.gone': 'Keskustelua ei enää ole.',
    'chats.closeFailed': 'Päättäminen ei onnistunut: {error}',
    'chats.notice.queued': 'Kävijä odottaa. Ota keskustelu, niin voit vastata.',
    'chats.notice.closed': 'Keskustelu on päättynyt.',
    'chats.notice.offline': 'Kävijä jätti viestin, kun kukaan ei ollut paikalla.',
    'chats.notice.other': 'Keskustelua hoitaa nyt toinen agentti.',
    'chats.notice.otherNamed': 'Keskustelua hoitaa nyt toinen agentti ({name}).',
    'conv.status.open': 'avoin',
    'conv.status.queued': 'jonossa',
    'conv.status.closed': 'päättynyt',
    'conv.status.offline': 'offline',
    'msg.sending': 'lähetetään…',
    'msg.notSent': 'ei lähetetty',
    'msg.retry': 'Yritä uudelleen',
    'msg.failed': 'Viestiä ei lähetetty: {error}',
    'composer.reply': 'Vastaus',
    'composer.note': 'Yksityinen muistiinpano',
    'composer.placeholder': 'Kirjoita vastaus — Enter lähettää, Shift+Enter rivinvaihto, / valmisvastaukset',
    'composer.notePlaceholder': 'Muistiinpano vain agenteille — Enter tallentaa',
    'composer.send': 'Lähetä',
    'composer.addNote': 'Tallenna muistiinpano',
    'note.label': 'Muistiinpano — vain agentit näkevät tämän',
    'note.failed': 'Muistiinpanoa ei voitu tallentaa: {error}',
    'timeline.invitation': 'Kutsu',
    'timeline.rule': 'Kutsu · sääntö ”{rule}”',
    'timeline.personal': 'Henkilökohtainen kutsu',
    'timeline.openingTitle': 'Kutsu, josta keskustelu alkoi: kävijä näki nämä sanat agentin ensimmäisinä.',
    'timeline.toAgent': '{from} → {to}',
    'timeline.toTeam': '{from} → tiimi {team}',
    'timeline.took': '{name} otti sen',
    'timeline.queue': 'Jono',
    'timeline.by': 'siirsi {name}',
    'timeline.transferTitle': 'Siirto — vain agentit näkevät tämän',
    'timeline.noteLabel': 'Siirtoviesti — vain agentit näkevät tämän',
    'error.generic': 'Virhe',
    'shortcuts.open': 'Pikanäppäimet (?)',
    'shortcuts.title': 'Pikanäppäimet',
    'shortcuts.next': 'Seuraava keskustelu',
    'shortcuts.prev': 'Edellinen keskustelu',
    'shortcuts.nth': 'Omien keskustelujen 1–9',
    'shortcuts.send': 'Lähetä (myös Enter; Shift+Enter rivinvaihto)',
    'shortcuts.canned': 'Valmisvastaukset: kirjoita / ja lyhenne, ↑/↓ valitsee, Enter lisää',
    'shortcuts.note': 'Vaihda vastauksen ja muistiinpanon välillä',
    'shortcuts.focus': 'Siirry vastauskenttään',
    'shortcuts.escape': 'Sulje ponnahdusikkuna tai tämä ohje',
    'shortcuts.help': 'Näytä tämä ohje',
  });

  var API = '/v1/console';
  var PING_MS = 25000;
  var PONG_TIMEOUT_MS = 10000;
  var BACKOFF_MIN_MS = 1000;
  var BACKOFF_MAX_MS = 15000;
  var TYPING_IDLE_MS = 3000;
  // While the agent keeps typing, "on" is repeated this often so the far side never times out.
  var TYPING_RESEND_MS = 2500;
  // Safety net only: if the visitor's "off" frame is lost, the indicator must not stay forever.
  var VISITOR_TYPING_TTL_MS = 20000;
  // A message sent over the socket that is not echoed back in time is re-sent over HTTP
  // (the same client_id stores one message, so this can never duplicate it).
  var ECHO_TIMEOUT_MS = 8000;

  // ---------------------------------------------------------------- state

  var state = {
    agent: null,
    site: null,
    teamNames: new Map(),    // team -> display name
    convs: new Map(),        // id -> AgentConversation, only those in Waiting or Mine
    // Every conversation change that arrives live bumps `clock`; a list or detail snapshot
    // that was requested before that change must not overwrite it.
    clock: 0,
    touched: new Map(),      // id -> clock of the last live change
    unread: new Map(),       // id -> Map(message id -> seq) of unseen visitor messages
    seen: {},                // id -> highest seq the agent has had in front of them
    typing: new Map(),       // id -> {preview, timer} while the visitor types
    drafts: new Map(),       // id -> unsent reply text
    pending: new Map(),      // client_id -> {convId, clientId, text, node, timer, failed}
    openId: null,
    open: null,              // {conv, byId: Map(id -> {msg, node}), order: [msg…], loaded, notes: Set(id), events: Map(key -> {node, build, data})}
    mode: 'reply',           // the composer writes a reply to the visitor, or a private note
    listRequest: 0,
    listApplied: 0,
  };

  // ---------------------------------------------------------------- DOM helpers

  // the shared helpers (core.js): a DOM builder that only ever sets text, and show/hide
  var $ = Beckon.$;
  var h = Beckon.h;
  var show = Beckon.show;

  function idOf(x) { return x == null ? '' : String(x); }

  function timeOf(iso) {
    var ms = Date.parse(iso || '');
    return isNaN(ms) ? null : ms;
  }

  function shortId(id) {
    id = idOf(id);
    return id.length > 12 ? id.slice(0, 8) + '…' : id;
  }

  function teamName(team) {
    if (team == null) return '';
    return state.teamNames.get(team) || String(team);
  }

  function formatTime(iso) { return Beckon.fmt.time(iso); }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  var bannerTimer = null;
  function banner(text) {
    var node = $('banner');
    node.textContent = text;
    show(node, true);
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(function () { show(node, false); }, 8000);
  }

  // ---------------------------------------------------------------- HTTP

  // opts.login: a 401 means "wrong credentials", not "session gone" (core.js emits
  // 'session:lost' otherwise, which ends the session here)
  var api = Beckon.api;

  function convPath(id, suffix) {
    return '/conversations/' + encodeURIComponent(id) + (suffix || '');
  }

  // ---------------------------------------------------------------- session

  function showLogin(errorText) {
    show($('booting'), false);
    show($('app'), false);
    show($('login-view'), true);
    var err = $('login-error');
    err.textContent = errorText || '';
    show(err, !!errorText);
    $('login-email').focus();
  }

  function start() {
    return api('GET', '/me').then(function (me) {
      state.agent = me.agent;
      state.site = me.site || {};
      state.teamNames = new Map();
      (me.teams || []).forEach(function (t) { state.teamNames.set(t.team, t.name || t.team); });
      loadSeen();
      show($('booting'), false);
      show($('login-view'), false);
      show($('app'), true);
      renderHeader();
      renderLists();
      renderOpen();
      refreshLists();
      ws.start();
      Beckon.emit('ready', me);
    });
  }

  // Forget everything that belongs to the agent who was logged in.
  function reset() {
    Beckon.emit('reset');
    ws.stop();
    stopAgentTyping();
    state.typing.forEach(function (t) { clearTimeout(t.timer); });
    state.pending.forEach(function (p) { clearTimeout(p.timer); });
    state.agent = null;
    state.site = null;
    state.convs = new Map();
    state.touched = new Map();
    state.unread = new Map();
    state.seen = {};
    state.typing = new Map();
    state.drafts = new Map();
    state.pending = new Map();
    state.openId = null;
    state.open = null;
    rows.forEach(function (r) { r.root.remove(); });
    rows.clear();
    $('messages').textContent = '';
    $('reply-input').value = '';
    setMode('reply');
    showShortcuts(false);
    document.title = t('title');
  }

  function sessionLost() {
    if (!state.agent) return;
    reset();
    showLogin(t('login.ended'));
  }

  function onLoginSubmit(ev) {
    ev.preventDefault();
    var email = $('login-email').value.trim();
    var password = $('login-password').value;
    var err = $('login-error');
    show(err, false);
    if (!email || !password) {
      err.textContent = t('login.missing');
      show(err, true);
      return;
    }
    var button = $('login-submit');
    button.disabled = true;
    api('POST', '/login', { email: email, password: password }, { login: true })
      .then(function () {
        $('login-password').value = '';
        return start();
      })
      .catch(function (e) {
        err.textContent = e.detail || (e.status === 401 ? t('login.wrong') : e.message);
        show(err, true);
      })
      .then(function () { button.disabled = false; });
  }

  function logout() {
    api('POST', '/logout').catch(function () { /* the cookie is gone either way for us */ })
      .then(function () {
        reset();
        showLogin('');
      });
  }

  // ---------------------------------------------------------------- seen / unread

  function seenKey() { return 'beckon.console.seen.' + idOf(state.agent && state.agent.id); }

  function loadSeen() {
    try { state.seen = JSON.parse(localStorage.getItem(seenKey()) || '{}') || {}; } catch (e) { state.seen = {}; }
  }

  function saveSeen() {
    // Only conversations still on screen are worth remembering; keeps storage bounded.
    var keep = {};
    Object.keys(state.seen).forEach(function (id) {
      if (state.convs.has(id) || id === state.openId) keep[id] = state.seen[id];
    });
    state.seen = keep;
    try { localStorage.setItem(seenKey(), JSON.stringify(keep)); } catch (e) { /* private mode */ }
  }

  function addUnread(msg) {
    var id = idOf(msg.conversation_id);
    if (msg.author !== 'visitor' || id === state.openId) return;
    if (msg.seq <= (state.seen[id] || 0)) return;
    if (!state.unread.has(id)) state.unread.set(id, new Map());
    state.unread.get(id).set(idOf(msg.id), msg.seq);
  }

  function markSeen(id, seq) {
    if (seq > (state.seen[id] || 0)) {
      state.seen[id] = seq;
      saveSeen();
    }
    state.unread.delete(id);
  }

  function unreadCount(id) {
    var m = state.unread.get(id);
    return m ? m.size : 0;
  }

  // ---------------------------------------------------------------- conversations (lists)

  function isMine(conv) {
    return !!state.agent && idOf(conv.agent_id) === idOf(state.agent.id);
  }

  function placeOf(conv) {
    if (conv.status === 'queued') return 'queue';
    if (conv.status === 'open' && isMine(conv)) return 'mine';
    return null;
  }

  function canReply(conv) {
    return !!conv && conv.status === 'open' && isMine(conv);
  }

  function newerMessage(a, b) {
    if (!a) return b || null;
    if (!b) return a;
    return b.seq >= a.seq ? b : a;
  }

  // Keeps the newest last message we know of: a list snapshot can lag behind message frames.
  function storeConv(conv) {
    var id = idOf(conv.id);
    var old = state.convs.get(id);
    var copy = Object.assign({}, conv);
    if (old) copy.last_message = newerMessage(old.last_message, conv.last_message);
    if (placeOf(copy)) {
      state.convs.set(id, copy);
      if (copy.last_message) addUnread(copy.last_message);
    } else {
      state.convs.delete(id);
      state.unread.delete(id);
    }
    return copy;
  }

  // A live fact about a conversation: from the socket or from our own POST's answer.
  function applyConversation(conv) {
    var id = idOf(conv.id);
    var before = state.convs.get(id);
    if (conv.status === 'queued' && (!before || before.status !== 'queued')) {
      Beckon.emit('chat:queued', conv);  // notifications and sound (toolkit.js)
    }
    state.clock += 1;
    state.touched.set(id, state.clock);
    storeConv(conv);
    if (conv.status !== 'open' && conv.status !== 'queued') clearVisitorTyping(id);
    if (state.openId === id) {
      state.open.conv = Object.assign({}, conv);
      renderOpen();
      Beckon.emit('conversation:update', state.open.conv);
    }
    renderLists();
  }

  function touchedSince(id, clock) { return (state.touched.get(id) || 0) > clock; }

  function refreshLists() {
    var clock = state.clock;
    var request = ++state.listRequest;
    return Promise.all([
      api('GET', '/conversations?scope=queue'),
      api('GET', '/conversations?scope=mine'),
    ]).then(function (answers) {
      // An older snapshot that arrives after a newer one has nothing to add.
      if (request < state.listApplied || !state.agent) return;
      state.listApplied = request;
      var fresh = new Map();
      answers.forEach(function (a) {
        ((a && a.conversations) || []).forEach(function (c) { fresh.set(idOf(c.id), c); });
      });
      Array.from(state.convs.keys()).forEach(function (id) {
        if (!fresh.has(id) && !touchedSince(id, clock)) {
          state.convs.delete(id);
          state.unread.delete(id);
        }
      });
      fresh.forEach(function (c, id) {
        if (!touchedSince(id, clock)) storeConv(c);
      });
      renderLists();
    }).catch(function (e) {
      if (e.status !== 401) banner(t('chats.listFailed', { error: e.message }));
    });
  }

  var listRefreshTimer = null;
  function refreshListsSoon() {
    clearTimeout(listRefreshTimer);
    listRefreshTimer = setTimeout(refreshLists, 400);
  }

  var pickupErrorTimer = null;
  function pickupError(text) {
    var err = $('pickup-error');
    clearTimeout(pickupErrorTimer);
    err.textContent = text || '';
    show(err, !!text);
    if (text) pickupErrorTimer = setTimeout(function () { show(err, false); }, 10000);
  }

  function pickup(id) {
    pickupError('');
    api('POST', convPath(id, '/pickup')).then(function (data) {
      applyConversation(data.conversation);
      openConversation(idOf(data.conversation.id));
    }).catch(function (e) {
      if (e.status === 401) return;
      pickupError(e.detail || e.message);
      // "Not queued any more" means our list is stale.
      if (e.status === 409 || e.status === 404) refreshListsSoon();
    });
  }

  // ---------------------------------------------------------------- list rendering

  var rows = new Map(); // 'queue:id' | 'mine:id' -> row parts

  function makeRow(kind, id) {
    var root = h('li', {
      className: 'conv-row',
      testid: kind === 'queue' ? 'queue-item' : 'mine-item',
      data: { 'conversation-id': id },
      attrs: { tabindex: '0' },
    });
    var visitor = h('span', { className: 'row-visitor', testid: 'row-visitor' });
    var meta = h('span', { className: 'row-meta', testid: 'row-meta' });
    var team = h('span', { className: 'row-team' });
    var time = h('span', { className: 'row-time' });
    var preview = h('span', { className: 'row-preview' });
    var typing = h('span', { className: 'row-typing', text: t('chats.typing'), attrs: { 'data-i18n': 'chats.typing' } });
    var unread = h('span', { className: 'unread', testid: 'unread' });
    var line1 = h('div', { className: 'row-line' }, [visitor, meta, team, time]);
    var line2 = h('div', { className: 'row-line' }, [preview, typing, unread]);
    var body = h('div', { className: 'row-body' }, [line1, line2]);
    root.appendChild(body);
    var pickupButton = null;
    if (kind === 'queue') {
      pickupButton = h('button', { className: 'btn btn-small btn-primary', testid: 'pickup', text: t('chats.pickup'), attrs: { type: 'button', 'data-i18n': 'chats.pickup' } });
      pickupButton.addEventListener('click', function (ev) {
        ev.stopPropagation();
        pickup(id);
      });
      root.appendChild(pickupButton);
    }
    root.addEventListener('click', function () { openConversation(id); });
    root.addEventListener('keydown', function (ev) {
      if (ev.target === root && (ev.key === 'Enter' || ev.key === ' ')) {
        ev.preventDefault();
        openConversation(id);
      }
    });
    return { root: root, visitor: visitor, meta: meta, team: team, time: time, preview: preview, typing: typing, unread: unread, seen: null, asked: false };
  }

  function updateRow(row, conv) {
    var id = idOf(conv.id);
    // The list answer adds what the live list knows of a visitor still on the site (label,
    // device, browser, landing); socket frames do not carry it, so the row keeps it.
    if (conv.visitor) row.seen = conv.visitor;
    else if (!row.seen && !row.asked) { row.asked = true; refreshListsSoon(); }  // a row from a frame
    var label = Beckon.visitorLabel((row.seen && row.seen.label) || conv.visitor_label, shortId(conv.visitor_id));
    row.visitor.textContent = label;
    row.visitor.title = label + ' · ' + idOf(conv.visitor_id);
    var meta = row.seen ? [Beckon.visitorDevice(row.seen), Beckon.visitorSource(row.seen)].filter(Boolean).join(' · ') : '';
    row.meta.textContent = meta;
    show(row.meta, !!meta);
    row.team.textContent = teamName(conv.team);
    var last = conv.last_message;
    row.time.textContent = formatTime(last ? last.created_at : conv.created_at);
    var text = '';
    if (last) {
      if (last.author === 'agent') text = ((last.agent && last.agent.name) || t('chats.agent')) + ': ' + last.text;
      else text = last.text;
    }
    row.preview.textContent = text;
    row.preview.className = 'row-preview' + (last && last.author === 'system' ? ' is-system' : '');
    show(row.typing, state.typing.has(id));
    show(row.preview, !state.typing.has(id));
    var n = unreadCount(id);
    row.unread.textContent = String(n);
    // Absent rather than "0": a badge exists only when there is something unread.
    if (n > 0 && !row.unread.parentNode) row.preview.parentNode.appendChild(row.unread);
    if (n === 0 && row.unread.parentNode) row.unread.remove();
    row.root.classList.toggle('is-active', id === state.openId);
    row.root.classList.toggle('has-unread', n > 0);
    if (id === state.openId) row.root.setAttribute('aria-current', 'true');
    else row.root.removeAttribute('aria-current');
  }

  function activity(conv) {
    var t = conv.last_message ? conv.last_message.created_at : conv.created_at;
    var ms = Date.parse(t || '');
    return isNaN(ms) ? 0 : ms;
  }

  function syncList(list, kind, convs) {
    var wanted = new Set();
    convs.forEach(function (conv, index) {
      var id = idOf(conv.id);
      var key = kind + ':' + id;
      wanted.add(key);
      var row = rows.get(key);
      if (!row) {
        row = makeRow(kind, id);
        rows.set(key, row);
      }
      updateRow(row, conv);
      // Move only what is out of place, so a row under the mouse is not needlessly re-inserted.
      if (list.children[index] !== row.root) list.insertBefore(row.root, list.children[index] || null);
    });
    rows.forEach(function (row, key) {
      if (key.indexOf(kind + ':') === 0 && !wanted.has(key)) {
        row.root.remove();
        rows.delete(key);
      }
    });
  }

  function renderLists() {
    if (!state.agent) return;
    var queue = [];
    var mine = [];
    state.convs.forEach(function (c) {
      var place = placeOf(c);
      if (place === 'queue') queue.push(c);
      else if (place === 'mine') mine.push(c);
    });
    // The queue is served in arrival order; my conversations by latest activity.
    queue.sort(function (a, b) { return (Date.parse(a.created_at) || 0) - (Date.parse(b.created_at) || 0); });
    mine.sort(function (a, b) { return activity(b) - activity(a); });
    syncList($('queue-list'), 'queue', queue);
    syncList($('mine-list'), 'mine', mine);
    $('queue-count').textContent = queue.length ? String(queue.length) : '';
    $('mine-count').textContent = mine.length ? String(mine.length) : '';
    show($('queue-empty'), queue.length === 0);
    show($('mine-empty'), mine.length === 0);
    var total = 0;
    state.unread.forEach(function (m) { total += m.size; });
    document.title = (total ? '(' + total + ') ' : '') + t('title');
    Beckon.emit('chats:unread', total);
  }

  // ---------------------------------------------------------------- header

  function renderHeader() {
    var a = state.agent;
    if (!a) return;
    $('agent-name').textContent = a.name || a.email || '';
    var site = state.site || {};
    $('site-name').textContent = site.name || site.site_id || a.site_id || '';
    var status = a.status || 'away';
    var toggle = $('status-toggle');
    toggle.setAttribute('data-status', status);
    toggle.textContent = t('status.' + (status === 'online' || status === 'away' ? status : 'offline'));
    toggle.title = status === 'online' ? t('status.onlineTitle') : t('status.awayTitle');
    toggle.setAttribute('aria-pressed', status === 'online' ? 'true' : 'false');
    $('agent-load').textContent = (a.open_chats != null ? a.open_chats : 0) + '/' + (a.max_chats != null ? a.max_chats : '–');
  }

  function toggleStatus() {
    if (!state.agent) return;
    var next = state.agent.status === 'online' ? 'away' : 'online';
    var toggle = $('status-toggle');
    toggle.disabled = true;
    api('POST', '/status', { status: next }).then(function (data) {
      if (data && data.agent) state.agent = data.agent;
      renderHeader();
    }).catch(function (e) {
      if (e.status !== 401) banner(t('status.failed', { error: e.message }));
    }).then(function () { toggle.disabled = false; });
  }

  // ---------------------------------------------------------------- open conversation

  function openConversation(id) {
    if (!state.agent) return;
    if (state.openId === id && state.open) {
      $('reply-input').focus();
      return;
    }
    stopAgentTyping();
    if (state.openId) state.drafts.set(state.openId, $('reply-input').value);
    state.openId = id;
    state.open = { conv: state.convs.get(id) || null, byId: new Map(), order: [], loaded: false, notes: new Set(), events: new Map() };
    $('messages').textContent = '';
    var input = $('reply-input');
    input.value = state.drafts.get(id) || '';
    autosize();
    // Messages sent earlier from this conversation that still await their echo.
    state.pending.forEach(function (p) { if (p.convId === id) placePending(p); });
    state.unread.delete(id);
    renderOpen();
    renderLists();
    loadOpen();
    if (canReply(state.open.conv)) input.focus();
  }

  function loadOpen() {
    var id = state.openId;
    if (!id) return Promise.resolve();
    var clock = state.clock;
    return api('GET', convPath(id)).then(function (data) {
      if (state.openId !== id) return;
      if (!touchedSince(id, clock) || !state.open.conv) state.open.conv = data.conversation;
      if (data.opening) addOpening(data.opening);
      (data.messages || []).forEach(function (m) { addMessage(m, false); });
      (data.notes || []).forEach(addNote);
      (data.transfers || []).forEach(addTransfer);
      state.open.loaded = true;
      Beckon.emit('conversation:open', state.open.conv);
      markSeen(id, maxSeq());
      renderOpen();
      renderLists();
      scrollToEnd(true);
    }).catch(function (e) {
      if (e.status === 401 || state.openId !== id) return;
      if (e.status === 404) {
        state.convs.delete(id);
        renderLists();
        closeView();
        banner(t('chats.gone'));
        return;
      }
      banner(t('chats.loadFailed', { error: e.message }));
    });
  }

  var openRefreshTimer = null;
  function reloadOpenSoon() {
    clearTimeout(openRefreshTimer);
    openRefreshTimer = setTimeout(loadOpen, 300);
  }

  function closeView() {
    Beckon.emit('conversation:none');
    stopAgentTyping();
    state.openId = null;
    state.open = null;
    $('messages').textContent = '';
    renderOpen();
  }

  function maxSeq() {
    var o = state.open;
    return o && o.order.length ? o.order[o.order.length - 1].seq : 0;
  }

  function renderOpen() {
    var view = $('conversation');
    var o = state.open;
    show($('no-conversation'), !o);
    show(view, !!o);
    if (!o) {
      view.removeAttribute('data-conversation-id');
      return;
    }
    view.setAttribute('data-conversation-id', state.openId);
    // The notice and typing line take room from the message list; stay pinned to the end.
    var follow = isNearBottom();
    var c = o.conv;
    var visitor = $('conv-visitor');
    // the same label as the visitor's row (a name, an e-mail or their pseudonym)
    var listed = c ? rows.get('mine:' + idOf(c.id)) || rows.get('queue:' + idOf(c.id)) : null;
    var label = c ? Beckon.visitorLabel((listed && listed.seen && listed.seen.label) || c.visitor_label, '') : '';
    visitor.textContent = c ? label || t('chats.visitorId', { id: shortId(c.visitor_id) }) : t('chats.loading');
    visitor.title = c ? idOf(c.visitor_id) : '';
    var status = $('conv-status');
    status.textContent = c ? t('conv.status.' + c.status) : '';
    status.setAttribute('data-status', c ? c.status : '');
    status.className = 'badge badge-' + (c ? c.status : 'none');
    $('conv-team').textContent = c && c.team ? t('chats.team', { team: teamName(c.team) }) : '';
    $('conv-email').textContent = c && c.email ? c.email : '';
    show($('conv-email'), !!(c && c.email));
    var agentName = c && c.agent && c.agent.name;
    $('conv-agent').textContent = agentName && !isMine(c) ? t('chats.with', { name: agentName }) : '';
    show($('conv-agent'), !!(agentName && !isMine(c)));

    var replying = canReply(c);
    $('close-conversation').disabled = !replying;
    show($('close-conversation'), !c || c.status === 'open' || c.status === 'queued');
    // a private note can be written on any conversation; a reply only on one's own
    var writable = state.mode === 'note' ? !!c : replying;
    $('reply-input').disabled = !writable;
    $('reply-send').disabled = !writable;
    var notice = '';
    if (c && c.status === 'queued') notice = t('chats.notice.queued');
    else if (c && c.status === 'closed') notice = t('chats.notice.closed');
    else if (c && c.status === 'offline') notice = t('chats.notice.offline');
    else if (c && c.status === 'open' && !isMine(c)) notice = agentName ? t('chats.notice.otherNamed', { name: agentName }) : t('chats.notice.other');
    $('conv-notice').textContent = notice;
    show($('conv-notice'), !!notice);
    if (!replying) stopAgentTyping();
    renderVisitorTyping();
    if (follow) scrollToEnd(true);
  }

  function closeConversation() {
    var id = state.openId;
    if (!id) return;
    var button = $('close-conversation');
    button.disabled = true;
    stopAgentTyping();
    api('POST', convPath(id, '/close')).then(function (data) {
      applyConversation(data.conversation);
    }).catch(function (e) {
      if (e.status === 401) return;
      banner(t('chats.closeFailed', { error: e.message }));
      renderOpen();
    });
  }

  // ---------------------------------------------------------------- messages

  function isNearBottom() {
    var list = $('messages');
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToEnd(force) {
    var list = $('messages');
    if (force || isNearBottom()) list.scrollTop = list.scrollHeight;
  }

  function messageNode(msg, pending) {
    var author = msg.author || 'system';
    var li = h('li', {
      className: 'msg msg-' + author + (pending ? ' msg-local is-pending' : ''),
      testid: 'message',
      data: { author: author, id: pending ? null : idOf(msg.id), seq: pending ? null : msg.seq, 'client-id': msg.client_id, time: pending ? null : timeOf(msg.created_at) },
    });
    if (author !== 'system') {
      var name = author === 'visitor' ? t('chats.visitor') : (msg.agent && msg.agent.name) || t('chats.agent');
      var meta = h('div', { className: 'msg-meta' }, [
        h('span', { className: 'msg-author', text: name, attrs: { 'data-i18n': author === 'visitor' ? 'chats.visitor' : null } }),
        h('time', { className: 'msg-time', text: pending ? t('msg.sending') : formatTime(msg.created_at), attrs: { datetime: pending ? null : msg.created_at } }),
      ]);
      li.appendChild(meta);
    }
    li.appendChild(h('div', { className: 'msg-text', text: msg.text == null ? '' : msg.text }));
    return li;
  }

  // Inserts a stored message of the open conversation, once, in seq order.
  function addMessage(msg, live) {
    var o = state.open;
    if (!o || idOf(msg.conversation_id) !== state.openId) return;
    var id = idOf(msg.id);
    if (o.byId.has(id)) return;
    var follow = isNearBottom();
    var gap = live && o.loaded && msg.seq > maxSeq() + 1;
    var node = messageNode(msg, false);
    o.byId.set(id, { msg: msg, node: node });
    // Usually the newest: walk from the end.
    var i = o.order.length;
    while (i > 0 && o.order[i - 1].seq > msg.seq) i -= 1;
    o.order.splice(i, 0, msg);
    var list = $('messages');
    var next = i + 1 < o.order.length ? o.byId.get(idOf(o.order[i + 1].id)).node : list.querySelector('.msg-local');
    list.insertBefore(node, next || null);
    if (follow || msg.author === 'agent') scrollToEnd(true);
    // A live frame skipped some seq (e.g. lost between instances): fetch the full history.
    if (gap) reloadOpenSoon();
  }

  function onMessage(msg, conversationId) {
    if (!msg) return;
    if (msg.conversation_id == null) msg.conversation_id = conversationId;
    var id = idOf(msg.conversation_id);
    confirmPending(msg);
    var conv = state.convs.get(id);
    if (conv) {
      conv.last_message = newerMessage(conv.last_message, msg);
      if (msg.seq > (conv.last_seq || 0)) conv.last_seq = msg.seq;
    } else {
      // A conversation we have not heard of yet: its conversation frame may be late.
      refreshListsSoon();
    }
    if (msg.author === 'visitor') {
      clearVisitorTyping(id);
      if (!(msg.seq <= (state.seen[id] || 0))) {
        Beckon.emit('chat:message', { conversation_id: id, message: msg, open: id === state.openId });
      }
    }
    if (id === state.openId) {
      if (state.open.conv && msg.seq > (state.open.conv.last_seq || 0)) state.open.conv.last_seq = msg.seq;
      addMessage(msg, true);
      if (state.open.loaded) markSeen(id, maxSeq());
    } else {
      addUnread(msg);
    }
    renderLists();
  }

  // ---------------------------------------------------------------- sending

  function placePending(p) {
    var node = messageNode({ author: 'agent', agent: state.agent, text: p.text, client_id: p.clientId }, true);
    if (p.failed) markFailed(p, node, p.error);
    p.node = node;
    $('messages').appendChild(node);
    scrollToEnd(true);
  }

  function markFailed(p, node, detail) {
    node.classList.add('is-failed');
    node.classList.remove('is-pending');
    var time = node.querySelector('.msg-time');
    if (time) time.textContent = t('msg.notSent');
    if (!node.querySelector('.msg-retry')) {
      var retry = h('button', { className: 'msg-retry', text: t('msg.retry'), attrs: { type: 'button', title: detail || '' } });
      retry.addEventListener('click', function () {
        p.failed = false;
        node.classList.remove('is-failed');
        node.classList.add('is-pending');
        if (time) time.textContent = t('msg.sending');
        retry.remove();
        deliver(p);
      });
      node.appendChild(retry);
    }
  }

  function confirmPending(msg) {
    if (!msg.client_id || !state.pending.has(msg.client_id)) return;
    var p = state.pending.get(msg.client_id);
    clearTimeout(p.timer);
    state.pending.delete(msg.client_id);
    if (p.node) p.node.remove();
  }

  function send() {
    if (state.mode === 'note') return saveNote();
    var o = state.open;
    var input = $('reply-input');
    if (!o || !canReply(o.conv)) return;
    var text = input.value.trim();
    if (!text) return;
    input.value = '';
    autosize();
    state.drafts.delete(state.openId);
    stopAgentTyping();
    var p = { convId: state.openId, clientId: newClientId(), text: text, node: null, timer: null, failed: false };
    state.pending.set(p.clientId, p);
    placePending(p);
    deliver(p);
    input.focus();
  }

  function deliver(p) {
    clearTimeout(p.timer);
    var sent = ws.send({ t: 'message', conversation_id: p.convId, client_id: p.clientId, text: p.text });
    if (sent) p.timer = setTimeout(function () { postPending(p); }, ECHO_TIMEOUT_MS);
    else postPending(p);
  }

  function postPending(p) {
    clearTimeout(p.timer);
    p.timer = null;
    if (!state.pending.has(p.clientId)) return;
    api('POST', convPath(p.convId, '/messages'), { client_id: p.clientId, text: p.text }).then(function (data) {
      if (data && data.message) onMessage(data.message, p.convId);
    }).catch(function (e) {
      if (e.status === 401 || !state.pending.has(p.clientId)) return;
      p.failed = true;
      p.error = e.detail || e.message;
      if (p.node) markFailed(p, p.node, p.error);
      banner(t('msg.failed', { error: p.error }));
    });
  }

  function autosize() {
    var input = $('reply-input');
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 180) + 'px';
  }

  // ---------------------------------------------------------------- private notes

  // A note sits among the messages by time, in a look of its own; only agents ever get it.
  function noteNode(note) {
    var li = h('li', {
      className: 'msg msg-note',
      testid: 'note',
      data: { id: idOf(note.id), time: timeOf(note.created_at) },
    });
    li.appendChild(h('div', { className: 'msg-meta' }, [
      h('span', { className: 'msg-author', text: (note.agent && note.agent.name) || t('chats.agent') }),
      h('span', { className: 'note-label', text: t('note.label'), attrs: { 'data-i18n': 'note.label' } }),
      h('time', { className: 'msg-time', text: formatTime(note.created_at), attrs: { datetime: note.created_at } }),
    ]));
    li.appendChild(h('div', { className: 'msg-text', text: note.text == null ? '' : note.text }));
    return li;
  }

  function addNote(note) {
    var o = state.open;
    if (!o || !note || idOf(note.conversation_id) !== state.openId) return;
    var id = idOf(note.id);
    if (o.notes.has(id)) return;
    o.notes.add(id);
    placeByTime(noteNode(note), note.created_at);
  }

  // Notes and transfers sit among the messages by time (before any message still sending).
  function placeByTime(node, iso) {
    var follow = isNearBottom();
    var when = timeOf(iso) || Date.now();
    var list = $('messages');
    var before = null;
    for (var i = 0; i < list.children.length; i += 1) {
      var child = list.children[i];
      var at = Number(child.getAttribute('data-time'));
      if (child.classList.contains('msg-local') || (at && at > when)) { before = child; break; }
    }
    list.insertBefore(node, before);
    if (follow) scrollToEnd(true);
  }

  // ---------------------------------------------------------------- the opening and transfers

  // The invitation that started the chat opens it here as it did on the visitor's widget:
  // its words as the agent's first, from the inviting agent (or just "Invitation" when a rule
  // sent it without a name), with the rule that fired.
  function openingNode(opening) {
    var source = opening.personal ? t('timeline.personal')
      : t('timeline.rule', { rule: opening.rule_name || opening.rule_id || '?' });
    var li = h('li', {
      className: 'msg msg-agent msg-opening',
      testid: 'opening',
      data: { time: timeOf(opening.created_at), 'rule-id': opening.rule_id },
      attrs: { title: t('timeline.openingTitle') },
    });
    li.appendChild(h('div', { className: 'msg-meta' }, [
      h('span', { className: 'msg-author', text: (opening.agent && opening.agent.name) || t('timeline.invitation') }),
      h('span', { className: 'opening-source', testid: 'opening-source', text: source }),
      h('time', { className: 'msg-time', text: formatTime(opening.created_at), attrs: { datetime: opening.created_at } }),
    ]));
    li.appendChild(h('div', { className: 'msg-text', text: opening.text == null ? '' : opening.text }));
    return li;
  }

  function addOpening(opening) {
    var o = state.open;
    if (!o || o.events.has('opening')) return;
    var node = openingNode(opening);
    o.events.set('opening', { node: node, build: openingNode, data: opening });
    var list = $('messages');
    list.insertBefore(node, list.firstChild);
  }

  function transferText(tr) {
    var from = (tr.from && tr.from.name) || t('timeline.queue');
    if (tr.target === 'team') {
      var text = t('timeline.toTeam', { from: from, team: state.teamNames.get(tr.to_team) || tr.to_team_name || tr.to_team });
      return tr.to && tr.to.name ? text + ' · ' + t('timeline.took', { name: tr.to.name }) : text;
    }
    return t('timeline.toAgent', { from: from, to: (tr.to && tr.to.name) || t('chats.agent') });
  }

  // "Anna → Ben" at its place in time, its note (agents only) attached to it.
  function transferNode(tr) {
    var li = h('li', {
      className: 'msg msg-event msg-transfer',
      testid: 'transfer-event',
      data: { id: idOf(tr.id), time: timeOf(tr.created_at), target: tr.target },
      attrs: { title: t('timeline.transferTitle') },
    });
    var line = [
      h('span', { className: 'event-icon', text: '⇄', attrs: { 'aria-hidden': 'true' } }),
      h('span', { className: 'event-text', testid: 'transfer-event-text', text: transferText(tr) }),
    ];
    if (tr.by && tr.by_agent_id !== tr.from_agent_id) line.push(h('span', { className: 'event-by', text: t('timeline.by', { name: tr.by.name }) }));
    line.push(h('time', { className: 'msg-time', text: formatTime(tr.created_at), attrs: { datetime: tr.created_at } }));
    li.appendChild(h('div', { className: 'event-line' }, line));
    if (tr.note) {
      li.appendChild(h('div', { className: 'transfer-note', testid: 'transfer-event-note' }, [
        h('span', { className: 'note-label', text: t('timeline.noteLabel') }),
        h('div', { className: 'msg-text', text: tr.note }),
      ]));
    }
    return li;
  }

  function addTransfer(tr) {
    var o = state.open;
    if (!o || !tr || idOf(tr.conversation_id) !== state.openId) return;
    var key = 'transfer:' + idOf(tr.id);
    if (o.events.has(key)) return;
    var node = transferNode(tr);
    o.events.set(key, { node: node, build: transferNode, data: tr });
    placeByTime(node, tr.created_at);
  }

  // The opening and the transfers say things with names in them: rebuilt in a new language.
  function relabelTimeline() {
    var o = state.open;
    if (!o) return;
    o.events.forEach(function (e) {
      var fresh = e.build(e.data);
      e.node.replaceWith(fresh);
      e.node = fresh;
    });
  }

  function saveNote() {
    var id = state.openId;
    var input = $('reply-input');
    var text = input.value.trim();
    if (!id || !text) return;
    var button = $('reply-send');
    button.disabled = true;
    api('POST', convPath(id, '/notes'), { text: text }).then(function (data) {
      if (state.mode === 'note' && state.openId === id) {
        input.value = '';
        autosize();
        state.drafts.delete(id);
      }
      if (data && data.note && state.openId === id) addNote(data.note);
    }).catch(function (e) {
      if (e.status !== 401) banner(t('note.failed', { error: e.message }));
    }).then(function () {
      renderOpen();
      input.focus();
    });
  }

  function setMode(mode) {
    if (state.mode !== mode) stopAgentTyping();
    state.mode = mode === 'note' ? 'note' : 'reply';
    var note = state.mode === 'note';
    $('mode-reply').setAttribute('aria-selected', note ? 'false' : 'true');
    $('mode-note').setAttribute('aria-selected', note ? 'true' : 'false');
    $('composer').classList.toggle('is-note', note);
    var input = $('reply-input');
    input.setAttribute('data-i18n-placeholder', note ? 'composer.notePlaceholder' : 'composer.placeholder');
    input.setAttribute('placeholder', t(note ? 'composer.notePlaceholder' : 'composer.placeholder'));
    var button = $('reply-send');
    button.setAttribute('data-i18n', note ? 'composer.addNote' : 'composer.send');
    button.textContent = t(note ? 'composer.addNote' : 'composer.send');
    if (state.agent) renderOpen();
    Beckon.emit('composer:mode', state.mode);
  }

  // ---------------------------------------------------------------- switching and shortcuts

  function mineOrder() {
    return Array.prototype.map.call($('mine-list').children, function (li) {
      return li.getAttribute('data-conversation-id');
    });
  }

  // Alt+↓ / Alt+↑: the next / previous of my conversations (then the waiting ones).
  function step(delta) {
    var ids = mineOrder().concat(Array.prototype.map.call($('queue-list').children, function (li) {
      return li.getAttribute('data-conversation-id');
    }));
    if (!ids.length) return;
    var at = ids.indexOf(state.openId);
    var next = at < 0 ? (delta > 0 ? 0 : ids.length - 1) : (at + delta + ids.length) % ids.length;
    openConversation(ids[next]);
  }

  var SHORTCUTS = [
    ['Alt+↓', 'shortcuts.next'],
    ['Alt+↑', 'shortcuts.prev'],
    ['Alt+1…9', 'shortcuts.nth'],
    ['Ctrl+Enter', 'shortcuts.send'],
    ['/', 'shortcuts.canned'],
    ['Alt+N', 'shortcuts.note'],
    ['Alt+R', 'shortcuts.focus'],
    ['Esc', 'shortcuts.escape'],
    ['?', 'shortcuts.help'],
  ];

  function showShortcuts(visible) {
    var box = $('shortcuts-help');
    if (!box) return;
    if (visible) {
      var list = $('shortcuts-list');
      list.textContent = '';
      SHORTCUTS.forEach(function (s) {
        list.appendChild(h('dt', {}, [h('kbd', { text: s[0] })]));
        list.appendChild(h('dd', { text: t(s[1]), attrs: { 'data-i18n': s[1] } }));
      });
    }
    show(box, !!visible);
    if (visible) $('shortcuts-close').focus();
  }

  function typingTarget(el) {
    return !!el && (el.tagName === 'TEXTAREA' || el.tagName === 'INPUT' || el.tagName === 'SELECT' || el.isContentEditable);
  }

  function onGlobalKey(ev) {
    if (!state.agent || ev.defaultPrevented) return;
    if (ev.key === 'Escape') {
      if (!$('shortcuts-help').hidden) { ev.preventDefault(); showShortcuts(false); return; }
      Beckon.emit('escape', ev);  // features close their popups
      return;
    }
    if (ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        if (Beckon.views.current !== 'chats') Beckon.views.show('chats');
        step(ev.key === 'ArrowDown' ? 1 : -1);
        return;
      }
      var digit = /^Digit([1-9])$/.exec(ev.code || '');
      if (digit) {
        var ids = mineOrder();
        var wanted = ids[Number(digit[1]) - 1];
        ev.preventDefault();
        if (Beckon.views.current !== 'chats') Beckon.views.show('chats');
        if (wanted) openConversation(wanted);
        return;
      }
      if (ev.code === 'KeyN' && state.open) {
        ev.preventDefault();
        setMode(state.mode === 'note' ? 'reply' : 'note');
        $('reply-input').focus();
        return;
      }
      if (ev.code === 'KeyR' && state.open) {
        ev.preventDefault();
        $('reply-input').focus();
        return;
      }
    }
    if (ev.key === '?' && !typingTarget(ev.target) && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      ev.preventDefault();
      showShortcuts(true);
    }
  }

  function rerender() {
    if (!state.agent) return;
    relabelTimeline();
    renderHeader();
    renderLists();
    renderOpen();
  }

  // ---------------------------------------------------------------- typing

  var agentTyping = { on: false, convId: null, sentAt: 0, idle: null };

  function onReplyInput() {
    autosize();
    var o = state.open;
    if (state.mode === 'note') return;  // the visitor must not even see "typing" for a note
    if (!o || !canReply(o.conv)) return;
    if (!$('reply-input').value.trim()) {
      stopAgentTyping();
      return;
    }
    var now = Date.now();
    if (!agentTyping.on || agentTyping.convId !== state.openId || now - agentTyping.sentAt > TYPING_RESEND_MS) {
      if (agentTyping.on && agentTyping.convId !== state.openId) stopAgentTyping();
      if (ws.send({ t: 'typing', conversation_id: state.openId, on: true })) {
        agentTyping.on = true;
        agentTyping.convId = state.openId;
        agentTyping.sentAt = now;
      }
    }
    clearTimeout(agentTyping.idle);
    agentTyping.idle = setTimeout(stopAgentTyping, TYPING_IDLE_MS);
  }

  function stopAgentTyping() {
    clearTimeout(agentTyping.idle);
    agentTyping.idle = null;
    if (agentTyping.on) ws.send({ t: 'typing', conversation_id: agentTyping.convId, on: false });
    agentTyping.on = false;
    agentTyping.convId = null;
  }

  function setVisitorTyping(id, on, preview) {
    var old = state.typing.get(id);
    if (old) clearTimeout(old.timer);
    if (on) {
      var entry = { preview: preview || '', timer: null };
      entry.timer = setTimeout(function () { clearVisitorTyping(id); }, VISITOR_TYPING_TTL_MS);
      state.typing.set(id, entry);
    } else {
      state.typing.delete(id);
    }
    if (id === state.openId) renderVisitorTyping();
    renderLists();
  }

  function clearVisitorTyping(id) {
    if (!state.typing.has(id)) return;
    setVisitorTyping(id, false, null);
  }

  function renderVisitorTyping() {
    var t = state.openId ? state.typing.get(state.openId) : null;
    var box = $('visitor-typing');
    var preview = t ? t.preview : '';
    $('typing-preview').textContent = preview;
    show($('typing-sep'), !!preview);
    show($('typing-preview'), !!preview);
    var follow = isNearBottom();
    show(box, !!t);
    if (follow) scrollToEnd(true);
  }

  // ---------------------------------------------------------------- WebSocket

  var ws = {
    sock: null,
    ready: false,       // hello received: the server knows who we are and routes frames to us
    active: false,      // we want a connection (logged in)
    attempt: 0,
    retryTimer: null,
    pingTimer: null,
    pongTimer: null,

    start: function () {
      this.active = true;
      this.attempt = 0;
      this.connect();
    },

    stop: function () {
      this.active = false;
      clearTimeout(this.retryTimer);
      this.drop();
      setWsState('reconnecting', 'ws.offline');
    },

    connect: function () {
      var self = this;
      clearTimeout(this.retryTimer);
      if (!this.active || this.sock) return;
      var url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + API + '/ws';
      var sock;
      try { sock = new WebSocket(url); } catch (e) { this.retry(false); return; }
      this.sock = sock;
      var opened = false;
      sock.onopen = function () { opened = true; self.startPing(); };
      sock.onmessage = function (ev) {
        if (sock !== self.sock) return;
        var frame;
        try { frame = JSON.parse(ev.data); } catch (e) { return; }
        if (frame && typeof frame === 'object') self.pong(); // any frame proves the link is alive
        handleFrame(frame);
      };
      sock.onclose = function (ev) {
        if (sock !== self.sock) return;
        self.sock = null;
        self.stopPing();
        // Refused before opening, or closed as unauthorised: maybe the session is over.
        var authProblem = !opened || ev.code === 1008 || ev.code === 4401 || ev.code === 4403 || ev.code === 4001;
        self.retry(authProblem);
      };
      sock.onerror = function () { /* onclose follows and does the work */ };
    },

    retry: function (checkSession) {
      var self = this;
      if (!this.active) return;
      setWsState('reconnecting', 'ws.reconnecting');
      var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, this.attempt));
      delay += Math.floor(Math.random() * 250); // spreads a fleet of consoles after an outage
      this.attempt += 1;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(function () {
        if (!checkSession) return self.connect();
        // GET /me answers 401 (and api() shows the login) when the cookie is no longer valid.
        api('GET', '/me').then(function (me) {
          if (me && me.agent) { state.agent = me.agent; renderHeader(); }
          self.connect();
        }, function (e) {
          if (e.status !== 401) self.connect();
        });
      }, delay);
    },

    // Forgets the current socket at once: a dead TCP link may take minutes to report close.
    drop: function () {
      var sock = this.sock;
      this.sock = null;
      this.stopPing();
      if (sock) {
        sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
        try { sock.close(); } catch (e) { /* already closing */ }
      }
    },

    send: function (frame) {
      if (!this.sock || this.sock.readyState !== WebSocket.OPEN || !this.ready) return false;
      try { this.sock.send(JSON.stringify(frame)); } catch (e) { return false; }
      return true;
    },

    startPing: function () {
      var self = this;
      this.stopPing();
      this.pingTimer = setInterval(function () {
        if (!self.send({ t: 'ping' })) return;
        clearTimeout(self.pongTimer);
        self.pongTimer = setTimeout(function () {
          self.drop();
          self.retry(false);
        }, PONG_TIMEOUT_MS);
      }, PING_MS);
    },

    pong: function () {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    },

    stopPing: function () {
      clearInterval(this.pingTimer);
      clearTimeout(this.pongTimer);
      this.pingTimer = null;
      this.pongTimer = null;
      this.ready = false;
    },

    now: function () {
      // Back online or back in front of the screen: do not sit out the backoff.
      if (this.active && !this.sock) {
        this.attempt = 0;
        this.connect();
      }
    },
  };

  function setWsState(stateName, label) {
    var node = $('ws-status');
    node.setAttribute('data-state', stateName);
    node.setAttribute('data-i18n', label);
    node.textContent = t(label);
  }

  function handleFrame(f) {
    if (!f || typeof f.t !== 'string' || !state.agent) return;
    switch (f.t) {
      case 'hello':
        if (f.agent) {
          state.agent = f.agent;
          renderHeader();
        }
        ws.ready = true;
        ws.attempt = 0;
        setWsState('connected', 'ws.live');
        onConnected();
        break;
      case 'message':
        onMessage(f.message, f.conversation_id);
        break;
      case 'typing':
        if (f.who && f.who !== 'visitor') break;
        setVisitorTyping(idOf(f.conversation_id), !!f.on, f.preview);
        break;
      case 'conversation':
        if (f.conversation) applyConversation(f.conversation);
        break;
      case 'note':
        if (f.note && idOf(f.note.conversation_id) === state.openId) addNote(f.note);
        Beckon.emit('frame:note', f);
        break;
      case 'transfer':
        if (f.transfer) addTransfer(f.transfer);
        Beckon.emit('frame:transfer', f);
        break;
      case 'agent':
        if (f.agent && idOf(f.agent.id) === idOf(state.agent.id)) {
          state.agent = f.agent;
          Beckon.emit('agent', f.agent);
          // "At your limit" is no longer true once a chat has been closed.
          if (f.agent.open_chats < f.agent.max_chats) pickupError('');
          renderHeader();
          renderLists();
          renderOpen();
        }
        break;
      case 'pong':
        break;
      case 'error':
        // Not in the documented console frames; shown rather than dropped if a server sends one.
        banner(f.detail || f.error || t('error.generic'));
        break;
      default:
        // the features' frames (live list, notes, …): Beckon.on('frame:<t>', fn)
        if (typeof f.t === 'string') Beckon.emit('frame:' + f.t, f);
        break;
    }
  }

  // Whatever happened while the socket was down is fetched again; merging is idempotent.
  function onConnected() {
    Beckon.emit('connected');  // features re-subscribe (the server forgets a dropped socket)
    refreshLists();
    if (state.openId) loadOpen();
    // Messages sent into the void are delivered over HTTP (client_id makes it safe).
    state.pending.forEach(function (p) { if (!p.failed) postPending(p); });
  }

  // ---------------------------------------------------------------- wiring

  function setLocale(ev) {
    var locale = ev.target.value;
    Beckon.i18n.set(locale);
    api('POST', '/me/preferences', { locale: locale }).then(function (data) {
      if (data && data.agent) { state.agent = data.agent; Beckon.emit('agent', data.agent); }
    }).catch(function (e) { banner(e.message); });
  }

  function init() {
    Beckon.send = function (frame) { return ws.send(frame); };
    Beckon.openConversation = function (id) { Beckon.views.show('chats'); openConversation(idOf(id)); };
    Beckon.on('session:lost', sessionLost);
    Beckon.on('locale', function (locale) { $('locale-select').value = locale; rerender(); });
    Beckon.chats = {
      openId: function () { return state.openId; },
      conversation: function () { return state.open ? state.open.conv : null; },
      canReply: function () { return !!state.open && canReply(state.open.conv); },
      mode: function () { return state.mode; },
      setMode: setMode,
      // puts text in the composer for the agent to edit before sending (canned replies)
      insert: function (text) {
        var input = $('reply-input');
        input.value = text;
        input.focus();
        input.setSelectionRange(text.length, text.length);
        input.dispatchEvent(new Event('input', { bubbles: true }));
      },
      applyConversation: applyConversation,
      banner: banner,
    };
    $('mode-reply').addEventListener('click', function () { setMode('reply'); $('reply-input').focus(); });
    $('mode-note').addEventListener('click', function () { setMode('note'); $('reply-input').focus(); });
    $('shortcuts-open').addEventListener('click', function () { showShortcuts(true); });
    $('shortcuts-close').addEventListener('click', function () { showShortcuts(false); });
    $('shortcuts-help').addEventListener('click', function (ev) { if (ev.target === $('shortcuts-help')) showShortcuts(false); });
    document.addEventListener('keydown', onGlobalKey);
    $('locale-select').addEventListener('change', setLocale);
    $('login-form').addEventListener('submit', onLoginSubmit);
    $('logout').addEventListener('click', logout);
    $('status-toggle').addEventListener('click', toggleStatus);
    $('close-conversation').addEventListener('click', closeConversation);
    $('composer').addEventListener('submit', function (ev) {
      ev.preventDefault();
      send();
    });
    var input = $('reply-input');
    input.addEventListener('keydown', function (ev) {
      // isComposing: Enter that confirms an IME candidate must not send.
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        send();
        return;
      }
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        send();
      }
    });
    input.addEventListener('input', onReplyInput);
    input.addEventListener('blur', function () {
      if (state.openId) state.drafts.set(state.openId, input.value);
    });
    window.addEventListener('online', function () { ws.now(); });
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') ws.now();
    });

    start().catch(function (e) {
      if (e.status === 401) showLogin('');
      else showLogin(e.status === 0 ? t('login.unreachable') : e.message);
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
