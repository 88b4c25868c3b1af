/*! Beckon chat widget | the protocol is docs/chat.md, the behaviour docs/chat.md#widget */
// One classic script with no build step: the tracking snippet loads it (or a store pastes it
// with data-site-key). Everything it draws lives in a shadow root on <div id="beckon-chat">.
(function () {
  'use strict';
  if (window.BeckonChat) return;
  const script = document.currentScript;
  const tracker = window.beckon;
  const chatConfig = (tracker && tracker.chat) || {};
  // standalone use: <script src="https://CHAT/widget.js" data-site-key="pk_…">
  const siteKey = chatConfig.siteKey || (script && script.dataset.siteKey);
  const base = (chatConfig.url || (script && script.src ? script.src.replace(/\/[^/]*$/, '') : '')).replace(/\/+$/, '');
  const STORAGE_KEY = 'beckon_chat_' + siteKey;
  const CREDENTIAL_KEY = 'beckon_chat_credential_' + siteKey;
  let memoryCredential = {};

  // Add a language by adding a key; missing texts fall back to English.
  const TEXTS = {
    en: {
      title: 'Chat with us', placeholder: 'Write a message…', send: 'Send', typing: 'Agent is typing…',
      queue: 'You are number {n} in the queue', wait: 'Waiting for an agent…',
      closed: 'The chat has ended.', again: 'Start a new chat',
      mailAsk: 'Leave your e-mail: we will send a copy of this conversation (a transcript) there, and you can reply to it',
      mailThanks: 'Thanks! A copy of this conversation will come by e-mail; reply to it to write to us.',
      mailAskContact: 'Leave your e-mail so we can get back to you', mailThanksContact: 'Thanks! We have your e-mail.',
      email: 'Your e-mail', name: 'Your name (optional)', message: 'Your message',
      offline: 'We are away right now. Leave a message and we will answer by e-mail.',
      leave: 'Send message', thanks: 'Thanks! We will get back to you by e-mail.',
      accept: 'Chat now', decline: 'No thanks', open: 'Open chat', close: 'Close', dismiss: 'Dismiss',
      online: 'online', reconnecting: 'reconnecting…', ended: 'chat ended', failed: 'Not sent',
      error: 'Something went wrong. Please try again.',
      away: 'Chat is unavailable for a moment. Your messages will be sent when it is back.',
    },
    fi: {
      title: 'Keskustele kanssamme', placeholder: 'Kirjoita viesti…', send: 'Lähetä',
      typing: 'Asiakaspalvelija kirjoittaa…', queue: 'Olet jonossa sijalla {n}',
      wait: 'Odotetaan asiakaspalvelijaa…', closed: 'Keskustelu on päättynyt.', again: 'Aloita uusi keskustelu',
      mailAsk: 'Jätä sähköpostiosoitteesi: lähetämme sinne kopion tästä keskustelusta, ja voit vastata siihen',
      mailThanks: 'Kiitos! Kopio keskustelusta tulee sähköpostiisi; vastaa siihen, niin viestisi tulee meille.',
      mailAskContact: 'Jätä sähköpostiosoitteesi, niin otamme yhteyttä', mailThanksContact: 'Kiitos! Saimme sähköpostiosoitteesi.',
      email: 'Sähköpostiosoitteesi', name: 'Nimesi (vapaaehtoinen)', message: 'Viestisi',
      offline: 'Emme ole nyt paikalla. Jätä viesti, niin vastaamme sähköpostitse.',
      leave: 'Lähetä viesti', thanks: 'Kiitos! Vastaamme sinulle sähköpostitse.',
      accept: 'Keskustele nyt', decline: 'Ei kiitos', open: 'Avaa chat', close: 'Sulje', dismiss: 'Ohita',
      online: 'yhteydessä', reconnecting: 'yhdistetään…', ended: 'keskustelu päättyi', failed: 'Ei lähetetty',
      error: 'Jokin meni vikaan. Yritä uudelleen.',
      away: 'Chat ei ole hetkeen käytettävissä. Viestisi lähetetään, kun se palaa.',
    },
  };
  let texts = TEXTS.en; // the page's language, English filling any gap (see build)
  let language = 'en'; // the language the widget speaks (a key of TEXTS): chat's e-mails use it too

  const STYLE = `:host{all:initial;--bk:#2563eb}
[hidden]{display:none!important}
.widget{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328}
button,input,textarea{font:inherit;color:inherit;box-sizing:border-box;margin:0}
button{cursor:pointer;border:0;border-radius:8px;padding:8px 12px;background:#eef0f3}
button:disabled{opacity:.6;cursor:default}
input,textarea{width:100%;padding:8px 10px;border:1px solid #d0d7de;border-radius:8px;background:#fff}
textarea{resize:none}
.primary{background:var(--bk);color:#fff}
.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;padding:0;background:var(--bk);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}
.launcher svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#d1242f;color:#fff;font-size:12px;line-height:20px;text-align:center;box-sizing:border-box}
.panel,.invite{position:fixed;right:20px;bottom:88px;z-index:2147483001;background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25)}
.panel{width:min(370px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));display:flex;flex-direction:column;overflow:hidden}
.invite{width:min(300px,calc(100vw - 40px));padding:14px;box-sizing:border-box}
.invite p{margin:8px 0 12px;white-space:pre-wrap;overflow-wrap:anywhere}
.who,header{display:flex;align-items:center;gap:10px}
.who{font-weight:600}
header{padding:12px 14px;background:var(--bk);color:#fff}
.avatar{width:36px;height:36px;border-radius:50%;object-fit:cover;flex:none}
.title{flex:1;min-width:0;display:flex;flex-direction:column}
.title b,.title span{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.title small{font-size:12px;opacity:.85}
.icon{background:none;color:inherit;font-size:20px;line-height:1;padding:2px 6px}
.scroll{flex:1;min-height:0;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px}
.messages{display:flex;flex-direction:column;gap:6px}
.msg{max-width:80%;padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}
.visitor{align-self:flex-end;background:var(--bk);color:#fff;border-bottom-right-radius:4px}
.agent{align-self:flex-start;background:#eef0f3;border-bottom-left-radius:4px}
.agent[data-name]::before{content:attr(data-name);display:block;font-size:11px;color:#57606a}
.system{align-self:center;color:#57606a;font-size:12px;text-align:center}
[data-pending]{opacity:.6}
[data-failed]{opacity:1;background:#d1242f}
[data-failed]::after{content:attr(data-failed);display:block;font-size:11px}
.info{padding:4px 14px;font-size:12px;color:#57606a}
.error{color:#d1242f}
.mail,.end,.offline,.compose{padding:10px 14px;border-top:1px solid #e5e7eb;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.mail .label{flex:1;font-size:13px}
.row{display:flex;gap:8px;width:100%}
.end p,.offline p{margin:0;width:100%}
.compose{flex-wrap:nowrap;align-items:flex-end}
.compose textarea{max-height:120px}
@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100%;border-radius:0}}`;

  const HTML = `<div class="widget">
<div class="invite" role="dialog" data-testid="beckon-invitation" hidden>
<div class="who"><img class="avatar" alt="" hidden><span class="name" data-testid="beckon-agent-name"></span></div>
<p data-testid="beckon-invitation-text"></p>
<div class="row"><button class="primary" data-action="accept" data-testid="beckon-accept" data-text="accept"></button><button data-action="decline" data-testid="beckon-decline" data-text="decline"></button></div>
</div>
<section class="panel" role="dialog" data-testid="beckon-panel" hidden>
<header><img class="avatar" alt="" hidden><div class="title"><b class="name" data-testid="beckon-agent-name" hidden></b><span class="greet"></span><small data-testid="beckon-status"></small></div><button class="icon" data-action="close" data-label="close">×</button></header>
<div class="scroll"><div class="msg agent intro" data-testid="beckon-opening" hidden></div><div class="messages" data-testid="beckon-messages" aria-live="polite"></div></div>
<div class="info" data-testid="beckon-typing" data-text="typing" hidden></div>
<div class="info" data-testid="beckon-queue" hidden></div>
<div class="info error" data-testid="beckon-error" role="alert" hidden></div>
<div class="info error" data-testid="beckon-away" role="status" data-text="away" hidden></div>
<div class="mail" data-testid="beckon-email" hidden><span class="label"></span><button class="icon" data-action="nomail" data-label="dismiss">×</button><div class="row"><input type="email" required autocomplete="email" data-testid="beckon-email-input" data-placeholder="email"><button data-action="mail" data-testid="beckon-email-send" data-text="send"></button></div></div>
<div class="end" hidden><p data-testid="beckon-note"></p><button class="primary" data-action="again" data-testid="beckon-new-chat" data-text="again"></button></div>
<form class="offline" data-testid="beckon-offline" hidden><p class="label"></p><input name="name" autocomplete="name" data-placeholder="name"><input name="email" type="email" required autocomplete="email" data-testid="beckon-offline-email" data-placeholder="email"><textarea name="text" rows="3" required data-testid="beckon-offline-text" data-placeholder="message"></textarea><button class="primary" data-testid="beckon-offline-send" data-text="leave"></button></form>
<div class="compose" hidden><textarea rows="1" data-testid="beckon-input" data-placeholder="placeholder"></textarea><button class="primary" data-action="send" data-testid="beckon-send" data-text="send"></button></div>
</section>
<button class="launcher" data-action="toggle" data-testid="beckon-launcher" data-label="open" aria-expanded="false"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M5 3h14a3 3 0 0 1 3 3v9a3 3 0 0 1-3 3H9l-5 4v-4.2A3 3 0 0 1 2 15V6a3 3 0 0 1 3-3z"/></svg><span class="badge" data-testid="beckon-unread" hidden></span></button>
</div>`;

  const now = () => Date.now();
  const noop = () => {};
  const LIVE = ['queued', 'open'];
  const AUTHORS = ['visitor', 'agent', 'system'];
  // how a message came: history (never beeps), a live frame (a gap triggers a sync), a sync answer
  const HISTORY = 0, LIVE_FRAME = 1, SYNC_ANSWER = 2;

  // --- storage: one JSON record per site, re-read before every change so tabs do not clobber
  // each other. Its short field names are kept as stored by earlier versions of this script:
  //   conv   the conversation id          seq, read  the highest seq shown / read
  //   pend   [{c: client_id, x: text, n: resends}] messages not yet confirmed by the server
  //   inv    {invitation id: 's' shown | 'a' accepted | 'd' declined} (last 50)
  //   gone   conversations left with "Start a new chat" (last 20)
  //   intro  {x: text, a: agent name}, the opening words     open, mail  panel open / e-mail asked
  let storage = null, memoryRecord = {};
  try { storage = window.localStorage; } catch { /* storage blocked: memory only */ }
  function readRecord() {
    let record = null;
    try { record = JSON.parse(storage.getItem(STORAGE_KEY)); } catch { /* none */ }
    return record || memoryRecord;
  }
  function updateRecord(change) {
    const record = readRecord();
    change(record);
    memoryRecord = record;
    try { storage.setItem(STORAGE_KEY, JSON.stringify(record)); } catch { /* memory only */ }
    return record;
  }

  const randomBytes = (count) => (window.crypto && crypto.getRandomValues ? crypto.getRandomValues(new Uint8Array(count)) : Uint8Array.from({ length: count }, () => Math.random() * 256));
  const uuid = () => (window.crypto && crypto.randomUUID ? crypto.randomUUID() : Array.from(randomBytes(16), (b) => (b + 256).toString(16).slice(1)).join(''));

  // The tracker's id links chat and browsing; a visitor who declined tracking still gets a chat id.
  let visitorId = null;
  function getVisitorId() {
    const tracked = tracker && tracker.visitorId && tracker.visitorId();
    if (tracked) return (visitorId = tracked);
    if (!visitorId) {
      try { visitorId = storage.getItem('beckon_chat_vid'); } catch { /* none */ }
      if (!visitorId) {
        visitorId = uuid();
        try { storage.setItem('beckon_chat_vid', visitorId); } catch { /* memory only */ }
      }
    }
    return visitorId;
  }

  // --- state
  let host, shadow, widget = null; // widget: the built UI, null until the first session answer
  let site = {}, agentsAvailable = true, token = null, conversation = null, lastSeq = 0, historyLoaded = false;
  // every seq up to `through` is shown (a sync asks from there: a gap stays asked for until it
  // is filled, even when the sync that saw it was refused); the seqs shown above it
  let through = 0;
  const shownSeqs = new Set();
  // the socket and its reconnection
  let socket = null, everConnected = false, attempt = 0, failedOpens = 0, retryTimer = 0, retryNext = null;
  let lastReceivedAt = 0, sessionPromise = null;
  // the panel, the invitation on show, the outgoing queue
  let isOpen = false, invitation = null, invitationTimer = 0, acceptedInvitationId = null;
  let creating = false, resendTimer = 0, beepDue = false;
  // typing: ours going out, the agent's coming in; the error line; the e-mail row's thank-you
  let typingSent = false, typingSentAt = 0, typingTimer = 0, typingIdleTimer = 0, agentTypingTimer = 0;
  let errorTimer = 0, mailThanksUntil = 0, audio = null;
  // chat said its database is away (503 database_unavailable, a frame, a socket closed 1013):
  // the visitor is told so, and pending messages wait without using up their tries
  let away = false, awayTimer = 0, awayChecks = 0;
  // how far this page told chat the visitor has seen the conversation (conversation.seen)
  let seenTold = { id: null, seq: 0 };
  const elementById = new Map(), elementByClientId = new Map();

  const isLive = () => !!conversation && LIVE.includes(conversation.status);
  const isAway = () => !isOpen || document.hidden;
  const byTestId = (id) => shadow.querySelector('[data-testid="beckon-' + id + '"]');
  const find = (selector) => shadow.querySelector(selector);

  // --- HTTP
  async function api(method, path, body, anonymous, isRetry) {
    const headers = {};
    if (token && !anonymous) headers.Authorization = 'Bearer ' + token;
    if (body) headers['Content-Type'] = 'application/json';
    const response = await fetch(base + path, { method, headers, body: body && JSON.stringify(body), credentials: 'omit' });
    if (response.status === 401 && !anonymous && !isRetry) {
      await renewSession();
      return api(method, path, body, 0, 1);
    }
    if (!response.ok) {
      if (response.status === 503) setAway(true);
      const error = new Error('beckon chat: ' + response.status + ' ' + path);
      error.status = response.status;
      error.after = (+response.headers.get('Retry-After') || 0) * 1e3;
      throw error;
    }
    setAway(false);
    return response.status === 204 ? null : response.json();
  }
  // 4xx other than 401/408/429 would fail again
  const isHopeless = (error) => error.status >= 400 && error.status < 500 && ![401, 408, 429].includes(error.status);

  // The user the store says is logged in, vouched for by its server's HMAC (docs/identity.md):
  // window.beckonIdentity = {user_id, user_hash, email, name} (set before the snippet or this
  // script loads), or data-user-id / -user-hash / -user-email / -user-name on this script. Chat
  // keeps the e-mail and name only when the hash is valid; cut to what it accepts, so an odd
  // value never stops the widget.
  function identity() {
    const given = window.beckonIdentity || chatConfig.identity || {};
    const data = (script && script.dataset) || {};
    const userId = given.user_id || data.userId;
    if (!userId) return {};
    const text = (value, max) => (value == null || value === '' ? undefined : String(value).slice(0, max));
    return {
      user_id: String(userId),
      user_hash: text(given.user_hash || data.userHash, 128),
      email: text(given.email || data.userEmail, 254),
      name: text(given.name || data.userName, 200),
    };
  }

  async function startSession() {
    const vid = getVisitorId();
    const body = { site_key: siteKey, visitor_id: vid, lang: navigator.language, ...identity() };
    // This browser's credential and the visitor id it was issued for, kept apart from the
    // conversation record: the conversations belong to it, never to the visitor id alone.
    let held = null;
    try { held = JSON.parse(storage.getItem(CREDENTIAL_KEY)); } catch { /* none */ }
    held = held || memoryCredential;
    if (held.c && held.v === vid) body.credential = held.c;
    const answer = await api('POST', '/v1/widget/session', body, 1);
    if (answer.credential) {
      memoryCredential = { c: answer.credential, v: vid };
      try { storage.setItem(CREDENTIAL_KEY, JSON.stringify(memoryCredential)); } catch { /* memory only */ }
    }
    token = answer.token;
    site = answer.site || {};
    agentsAvailable = answer.agents_available !== false;
    if (!widget) build();
    applyConversation(answer.conversation);
  }
  // several calls may see 401 at once; one new session serves them all
  const renewSession = () => sessionPromise || (sessionPromise = startSession().finally(() => { sessionPromise = null; }));

  function setAway(on) {
    if (on && !awayTimer) awayTimer = setTimeout(checkAway, Math.min(15e3, 2e3 * 2 ** awayChecks++));
    if (!on) {
      clearTimeout(awayTimer);
      awayTimer = awayChecks = 0;
    }
    if (away === on) return;
    away = on;
    if (widget) byTestId('away').hidden = !on;
  }
  // Still away a moment later: ask again. A sync that is answered clears the notice and fills
  // in what was missed meanwhile; a quiet conversation has no other frame that would show chat
  // is back (a pong proves only the socket). Without a socket, the reconnect's hello asks.
  function checkAway() {
    awayTimer = 0;
    if (away && requestSync()) setAway(true); // the next check, unless the answer clears it
  }

  // --- connection
  function setConnectionState(state) {
    if (state === 'connected') everConnected = true;
    else if (state === 'reconnecting' && !everConnected) state = 'connecting';
    host.dataset.state = state;
    renderStatus();
  }

  // The header's line: the connection, but "chat ended" once the conversation is over (the
  // socket stays up for a new chat, yet nobody is there to answer this one).
  function renderStatus() {
    if (!widget) return;
    const line = byTestId('status');
    const state = host.dataset.state;
    const key = conversation && !isLive() ? 'ended' : state === 'connected' ? 'online' : 'reconnecting';
    line.dataset.status = key;
    line.textContent = texts[key];
  }

  // Exponential back-off with jitter: a delay in [b/2, b], b doubling from 1 s to 30 s.
  function retryLater(action, atLeast) {
    clearTimeout(retryTimer);
    // while the browser says it is offline, the 'online' event comes first
    const backOff = navigator.onLine === false ? 3e4 : Math.min(3e4, 1e3 * 2 ** attempt);
    attempt = Math.min(attempt + 1, 10);
    retryNext = action;
    retryTimer = setTimeout(() => { retryNext = null; action(); }, Math.max(atLeast || 0, backOff / 2 + (Math.random() * backOff) / 2));
  }
  // back online or visible again: the waiting retry runs now
  function retryNow() {
    if (!retryNext) return;
    const action = retryNext;
    clearTimeout(retryTimer);
    retryNext = null;
    attempt = 0;
    action();
  }

  // A session, the history once, then the socket.
  async function boot() {
    setConnectionState('reconnecting');
    try {
      await renewSession();
    } catch (error) {
      if (isHopeless(error)) {
        console.warn(error.message);
        host.style.display = 'none';
        return setConnectionState('idle');
      }
      return retryLater(boot, error.after);
    }
    failedOpens = 0;
    if (conversation && !historyLoaded) {
      historyLoaded = true;
      try {
        const answer = await api('GET', '/v1/widget/messages?after=0');
        (answer.messages || []).forEach((message) => addMessage(message, HISTORY));
        afterMessages();
      } catch { /* sync after hello fills in */ }
    }
    connect();
  }

  function connect() {
    clearTimeout(retryTimer);
    retryNext = null;
    if (socket) {
      socket.onclose = null;
      try { socket.close(); } catch { /* already closed */ }
      socket = null;
      setConnectionState('reconnecting');
    }
    if (!token) return boot();
    let opened = false, ws;
    try {
      ws = socket = new WebSocket(base.replace(/^http/, 'ws') + '/v1/widget/ws?token=' + encodeURIComponent(token));
    } catch {
      return onSocketLost(0, false);
    }
    ws.onopen = () => {
      opened = true;
      failedOpens = 0;
      lastReceivedAt = now();
      setConnectionState('connected');
    };
    ws.onmessage = (event) => {
      lastReceivedAt = now();
      let frame = null;
      try { frame = JSON.parse(event.data); } catch { /* not ours */ }
      if (frame) handleFrame(frame);
    };
    ws.onclose = (event) => { if (socket === ws) onSocketLost(event.code, opened); };
  }

  function onSocketLost(code, opened) {
    socket = null;
    clearTimeout(resendTimer);
    showAgentTyping(false);
    setConnectionState('reconnecting');
    if (code === 1013) setAway(true); // try again later: not a stale token
    else if (!opened) failedOpens++;
    // A refused handshake is invisible to a page (close 1006): two in a row may mean a stale token.
    retryLater(code === 4401 || failedOpens >= 2 ? boot : connect);
  }

  function dropSocket() {
    socket.onclose = null;
    socket.close();
    onSocketLost(1006, true);
  }

  function sendFrame(frame) {
    if (!socket || socket.readyState !== 1) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }
  const requestSync = () => conversation && sendFrame({ t: 'sync', after: through });

  function handleFrame(frame) {
    if (frame.t === 'error' && frame.error === 'database_unavailable') setAway(true);
    else if (frame.t !== 'error' && frame.t !== 'pong') setAway(false);
    if (frame.t === 'hello') {
      attempt = 0; // only now: a server that accepts and drops at once still gets backed off
      seenTold = { id: null, seq: 0 }; // what the last socket was told may have been lost with it
      applyConversation(frame.conversation);
      requestSync();
      flushPending();
      receiveInvitation((frame.invitations || []).filter(isInvitationValid).pop());
    } else if (frame.t === 'invitation') receiveInvitation(frame.invitation);
    else if (frame.t === 'message') {
      addMessage(frame.message, LIVE_FRAME);
      afterMessages();
    } else if (frame.t === 'messages') {
      (frame.messages || []).slice().sort((a, b) => a.seq - b.seq).forEach((message) => addMessage(message, SYNC_ANSWER));
      afterMessages();
    } else if (frame.t === 'typing') showAgentTyping(frame.on);
    else if (frame.t === 'conversation') {
      applyConversation(frame.conversation);
      if (frame.conversation && frame.conversation.last_seq > through) requestSync();
    } else if (frame.t === 'error') console.warn('beckon chat:', frame.error, frame.detail);
  }

  // --- conversation and messages
  function applyConversation(next) {
    if (!next || !next.id) return;
    // a conversation the visitor left with "new chat" stays left until it comes back to life
    if ((readRecord().gone || []).includes(next.id) && !LIVE.includes(next.status)) return;
    if (conversation && conversation.id !== next.id) {
      for (const element of Array.from(messageList().children)) if (element.dataset.id) element.remove();
      for (const [clientId, element] of elementByClientId) if (element.dataset.id) elementByClientId.delete(clientId);
      elementById.clear();
      forgetSeqs();
      updateRecord((record) => { record.intro = null; });
    }
    conversation = next;
    updateRecord((record) => {
      if (record.conv !== next.id) {
        record.conv = next.id;
        record.seq = record.read = 0;
      }
      // the invitation that opened it, as the server has it (frames leave it out): the
      // agent's first words, the same the agent's console shows, on any device
      if ('opening' in next) record.intro = next.opening && next.opening.text ? { x: next.opening.text, a: next.opening.agent && next.opening.agent.name } : null;
    });
    if (!isLive()) stopTyping();
    render();
  }

  const messageList = () => byTestId('messages');

  function messageElement(message) {
    const element = document.createElement('div');
    const author = AUTHORS.includes(message.author) ? message.author : 'system';
    element.className = 'msg ' + author;
    element.setAttribute('data-testid', 'beckon-message');
    element.dataset.author = author;
    element.textContent = message.text;
    // the name is drawn by CSS so that the element's text stays the message text
    if (author === 'agent' && message.agent && message.agent.name) element.dataset.name = message.agent.name;
    if (message.created_at) element.title = new Date(message.created_at).toLocaleString();
    return element;
  }

  // before the first element with a higher seq, or one not stored yet (pending)
  function placeInOrder(element, seq) {
    let before = null;
    for (const other of messageList().children) {
      if (other !== element && (!other.dataset.seq || +other.dataset.seq > seq)) { before = other; break; }
    }
    messageList().insertBefore(element, before);
  }

  function addMessage(message, how) {
    if (!widget || !message || !message.id || elementById.has(message.id)) return;
    const conversationId = message.conversation_id;
    if (conversationId && (conversation ? conversationId !== conversation.id : (readRecord().gone || []).includes(conversationId))) return;
    const clientId = message.client_id;
    // the server's copy of a message shown while pending takes over its element
    let element = clientId && elementByClientId.get(clientId);
    if (element) {
      element.removeAttribute('data-pending');
      element.removeAttribute('data-failed');
      element.textContent = message.text;
    } else element = messageElement(message);
    element.dataset.id = message.id;
    element.dataset.seq = message.seq;
    elementById.set(message.id, element);
    placeInOrder(element, message.seq);
    if (clientId) {
      elementByClientId.set(clientId, element);
      forgetPending(clientId);
    }
    shownSeqs.add(message.seq);
    while (shownSeqs.has(through + 1)) shownSeqs.delete(++through);
    if (how === LIVE_FRAME && message.seq > through) requestSync(); // a gap: fetch what was missed
    if (message.seq > lastSeq) lastSeq = message.seq;
    if (message.author === 'agent') {
      showAgentTyping(false);
      if (how !== HISTORY && isAway() && message.seq > (readRecord().read || 0)) beepDue = true;
    }
  }

  function forgetSeqs() {
    lastSeq = through = 0;
    shownSeqs.clear();
  }

  function afterMessages() {
    if (!widget) return;
    updateRecord((record) => { record.seq = lastSeq; });
    markRead();
    render();
    const scroll = find('.scroll');
    scroll.scrollTop = scroll.scrollHeight;
    if (beepDue) beep();
    beepDue = false;
  }

  function markRead() {
    if (isOpen && !document.hidden && conversation) updateRecord((record) => { record.read = Math.max(record.read || 0, lastSeq); });
    tellSeen();
  }

  // The visitor has seen what the panel shows only while it is open on a visible page: then
  // chat hears how far (it e-mails the visitor only agents' messages they have not seen).
  // Told again after a reconnect (hello); chat publishes only what grows. Only as far as no
  // line is missing: one lost in a gap has not been seen.
  function tellSeen() {
    if (!isOpen || document.visibilityState !== 'visible' || !conversation || !through) return;
    if (seenTold.id === conversation.id && seenTold.seq >= through) return;
    if (sendFrame({ t: 'seen', conversation_id: conversation.id, seq: through })) seenTold = { id: conversation.id, seq: through };
  }

  function forgetPending(clientId) {
    updateRecord((record) => { record.pend = (record.pend || []).filter((pending) => pending.c !== clientId); });
  }

  function showPending(clientId, text) {
    const element = messageElement({ author: 'visitor', text });
    element.dataset.pending = 1;
    elementByClientId.set(clientId, element);
    messageList().appendChild(element);
  }

  function markFailed(clientId) {
    forgetPending(clientId);
    const element = elementByClientId.get(clientId);
    if (element) element.dataset.failed = texts.failed;
  }

  function submit() {
    const input = byTestId('input'), text = input.value.trim();
    if (!text) return;
    input.value = '';
    growInput();
    stopTyping();
    const clientId = uuid();
    updateRecord((record) => { (record.pend = record.pend || []).push({ c: clientId, x: text }); });
    showPending(clientId, text);
    afterMessages();
    flushPending();
  }

  // Pending messages go out again, same client_id, until the server's copy comes back; it dedupes.
  // In a live conversation they are socket frames; otherwise the first one starts a conversation.
  async function flushPending() {
    clearTimeout(resendTimer);
    const pending = readRecord().pend || [];
    if (!pending.length || !token) return;
    if (isLive()) {
      if (!pending.every((message) => sendFrame({ t: 'message', client_id: message.c, text: message.x }))) return; // hello flushes
      resendTimer = setTimeout(onResendDue, 8e3);
      return;
    }
    if (creating) return;
    creating = true;
    const first = pending[0], body = { text: first.x, client_id: first.c, language };
    if (acceptedInvitationId) body.invitation_id = acceptedInvitationId;
    let started = false;
    try {
      adoptConversation(await api('POST', '/v1/widget/conversations', body));
      started = true;
    } catch (error) {
      if (isHopeless(error)) {
        markFailed(first.c);
        showError();
      } else resendTimer = setTimeout(flushPending, Math.max(5e3, error.after || 0));
    } finally {
      creating = false;
    }
    if (started) flushPending();
  }

  // still pending 8 s after sending: count a try (5 and it is failed), sync and send again
  function onResendDue() {
    let gaveUp = [];
    updateRecord((record) => {
      if (!away) (record.pend || []).forEach((message) => { message.n = (message.n || 0) + 1; });
      gaveUp = (record.pend || []).filter((message) => message.n > 5).map((message) => message.c);
    });
    gaveUp.forEach(markFailed);
    requestSync();
    flushPending();
  }

  // A conversation answer may carry a new token bound to it: the socket must use that one.
  function adoptConversation(answer) {
    if (!answer) return;
    const changed = answer.token && answer.token !== token;
    if (answer.token) token = answer.token;
    acceptedInvitationId = null;
    applyConversation(answer.conversation);
    if (changed && socket) connect();
  }

  function startNewChat() {
    const id = conversation && conversation.id;
    updateRecord((record) => {
      if (id) record.gone = (record.gone || []).concat(id).slice(-20);
      record.conv = record.intro = null;
      record.seq = record.read = 0;
    });
    conversation = null;
    forgetSeqs();
    elementById.clear();
    elementByClientId.clear();
    messageList().textContent = '';
    render();
    focusInput();
  }

  // --- typing: ours at most every 300 ms, off after 3 s without a key; the agent's for 6 s
  function onTyping() {
    if (!isLive()) return;
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(stopTyping, 3e3);
    const wait = typingSentAt + 300 - now();
    if (wait > 0) {
      if (!typingTimer) typingTimer = setTimeout(() => { typingTimer = 0; sendTyping(); }, wait);
    } else sendTyping();
  }
  function sendTyping() {
    const text = byTestId('input').value;
    if (!text.trim()) return stopTyping();
    typingSentAt = now();
    typingSent = true;
    const frame = { t: 'typing', on: true };
    if (site.typing_preview) frame.preview = text;
    sendFrame(frame);
  }
  function stopTyping() {
    clearTimeout(typingIdleTimer);
    clearTimeout(typingTimer);
    typingTimer = 0;
    if (typingSent) {
      typingSent = false;
      sendFrame({ t: 'typing', on: false });
    }
  }
  function showAgentTyping(on) {
    clearTimeout(agentTypingTimer);
    if (!widget) return;
    byTestId('typing').hidden = !on;
    if (on) agentTypingTimer = setTimeout(() => showAgentTyping(false), 6e3);
  }

  // --- invitations
  function isInvitationValid(candidate) {
    const seen = candidate && candidate.id && (readRecord().inv || {})[candidate.id];
    return !!(candidate && candidate.id) && seen !== 'a' && seen !== 'd' && !(Date.parse(candidate.expires_at) <= now());
  }
  // remember what became of an invitation ('s' shown, 'a' accepted, 'd' declined), the last 50
  function markInvitation(id, outcome) {
    updateRecord((record) => {
      const outcomes = (record.inv = record.inv || {}), known = Object.keys(outcomes);
      outcomes[id] = outcome;
      if (known.length >= 50) delete outcomes[known[0]];
    });
  }
  function receiveInvitation(candidate) {
    if (!isInvitationValid(candidate) || isLive()) return;
    invitation = candidate;
    clearTimeout(invitationTimer);
    const left = Date.parse(candidate.expires_at) - now();
    if (left > 0) invitationTimer = setTimeout(() => { invitation = null; renderInvitation(); }, Math.min(left, 2e9));
    renderInvitation();
  }
  function renderInvitation() {
    if (!widget) return;
    if (invitation && !isInvitationValid(invitation)) invitation = null;
    const bubble = byTestId('invitation'), show = !!invitation && !isOpen && !isLive();
    bubble.hidden = !show;
    if (!show) return;
    const agent = invitation.agent;
    byTestId('invitation-text').textContent = invitation.message || '';
    find('.who').hidden = !agent;
    find('.invite .name').textContent = agent ? agent.name : '';
    setAvatar(find('.invite .avatar'), agent);
    if (!(readRecord().inv || {})[invitation.id]) {
      markInvitation(invitation.id, 's');
      api('POST', '/v1/widget/invitations/' + encodeURIComponent(invitation.id) + '/shown').catch(noop);
    }
  }
  async function answerInvitation(accepted) {
    const answered = invitation;
    if (!answered) return;
    invitation = null;
    clearTimeout(invitationTimer);
    markInvitation(answered.id, accepted ? 'a' : 'd');
    renderInvitation();
    const told = api('POST', '/v1/widget/invitations/' + encodeURIComponent(answered.id) + (accepted ? '/accepted' : '/declined')).catch(noop);
    if (!accepted) return;
    acceptedInvitationId = answered.id; // if the next call fails, the first message carries it
    const intro = { x: answered.message, a: answered.agent && answered.agent.name };
    updateRecord((record) => { record.intro = intro; });
    openPanel(true);
    await told;
    try {
      adoptConversation(await api('POST', '/v1/widget/conversations', { invitation_id: answered.id, language }));
      render();
      flushPending();
    } catch (error) {
      if (isHopeless(error)) showError();
    }
  }

  // --- panel
  function setAvatar(img, agent) {
    const url = agent && agent.avatar_url;
    img.hidden = !(url && /^https?:\/\//i.test(url));
    img.onerror = () => { img.hidden = true; };
    if (!img.hidden && img.src !== url) img.src = url;
  }

  function showError() {
    const line = byTestId('error');
    line.textContent = texts.error;
    line.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { line.hidden = true; }, 6e3);
  }

  // Everything shown follows from the stored record and the state above.
  function render() {
    if (!widget) return;
    const record = readRecord(), current = conversation, live = isLive();
    const agent = current && current.agent, ended = !!current && !live;
    const name = find('header .name');
    name.hidden = !agent;
    name.textContent = agent ? agent.name : '';
    find('.greet').hidden = !!agent;
    find('.greet').textContent = site.greeting || texts.title;
    setAvatar(find('header .avatar'), agent);
    const queue = byTestId('queue');
    queue.hidden = !(current && current.status === 'queued');
    queue.textContent = current && current.queue_position ? texts.queue.replace('{n}', current.queue_position) : texts.wait;
    find('.end').hidden = !ended;
    byTestId('note').textContent = ended && current.status === 'offline' ? texts.thanks : texts.closed;
    byTestId('note').dataset.kind = ended ? current.status : '';
    const offline = !current && !agentsAvailable && site.offline !== false;
    byTestId('offline').hidden = !offline;
    find('.offline .label').textContent = typeof site.offline === 'string' && site.offline ? site.offline : texts.offline;
    find('.compose').hidden = !(live || (!current && !offline));
    const mail = byTestId('email');
    mail.hidden = !current || current.status === 'offline' || (!!record.mail && now() > mailThanksUntil);
    // a transcript is promised only where the site sends e-mail (site.email_transcripts)
    const transcript = site.email_transcripts === true;
    mail.dataset.kind = transcript ? 'transcript' : 'contact';
    const thanking = now() < mailThanksUntil;
    find('.mail .label').textContent = thanking ? (transcript ? texts.mailThanks : texts.mailThanksContact) : (transcript ? texts.mailAsk : texts.mailAskContact);
    find('.mail .row').hidden = thanking;
    const opening = find('.intro'), intro = record.intro;
    opening.textContent = (intro && intro.x) || '';
    if (intro && intro.a) opening.dataset.name = intro.a;
    else opening.removeAttribute('data-name');
    opening.hidden = !intro || !intro.x || Array.from(messageList().children).some((element) => element.textContent === intro.x);
    renderStatus();
    let unread = 0;
    for (const element of messageList().children) if (element.dataset.author === 'agent' && +element.dataset.seq > (record.read || 0)) unread++;
    unread = isAway() ? unread : 0;
    byTestId('unread').hidden = !unread;
    byTestId('unread').textContent = unread > 9 ? '9+' : unread;
    renderInvitation();
  }

  function focusInput() {
    const compose = find('.compose');
    (compose.hidden ? byTestId('offline-email') : byTestId('input')).focus();
  }

  function openPanel(byUser) {
    isOpen = true;
    if (!widget) return;
    byTestId('panel').hidden = false;
    byTestId('launcher').setAttribute('aria-expanded', 'true');
    updateRecord((record) => { record.open = 1; });
    markRead();
    render();
    const scroll = find('.scroll');
    scroll.scrollTop = scroll.scrollHeight;
    if (byUser) focusInput();
  }
  function closePanel() {
    isOpen = false;
    if (!widget) return;
    byTestId('panel').hidden = true;
    byTestId('launcher').setAttribute('aria-expanded', 'false');
    updateRecord((record) => { record.open = 0; });
    render();
  }

  async function sendEmail() {
    const input = byTestId('email-input'), email = input.value.trim();
    if (!email || !input.checkValidity()) return input.reportValidity();
    const button = byTestId('email-send');
    button.disabled = true;
    try {
      await api('POST', '/v1/widget/email', { email });
      input.removeAttribute('aria-invalid');
      mailThanksUntil = now() + 4e3;
      updateRecord((record) => { record.mail = 1; });
      setTimeout(render, 4100);
    } catch {
      input.setAttribute('aria-invalid', 'true');
      showError();
    }
    button.disabled = false;
    render();
  }

  async function leaveOfflineMessage(event) {
    event.preventDefault();
    const form = byTestId('offline'), field = (name) => form.querySelector('[name=' + name + ']').value.trim();
    const body = { email: field('email'), text: field('text'), language };
    if (!body.text) return form.querySelector('[name=text]').focus();
    if (field('name')) body.name = field('name');
    const button = byTestId('offline-send');
    button.disabled = true;
    try {
      const answer = await api('POST', '/v1/widget/offline', body);
      form.reset();
      updateRecord((record) => { record.mail = 1; }); // the address is known now
      applyConversation((answer && answer.conversation) || { id: 'offline-' + uuid(), status: 'offline' });
    } catch {
      showError();
    }
    button.disabled = false;
  }

  function growInput() {
    const input = byTestId('input');
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 120) + 'px';
  }

  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === 'suspended') audio.resume().catch(noop);
      const oscillator = audio.createOscillator(), gain = audio.createGain(), at = audio.currentTime;
      oscillator.frequency.value = 880;
      gain.gain.setValueAtTime(0.08, at);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.25);
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.25);
    } catch { /* autoplay policy or no WebAudio */ }
  }

  function build() {
    const lang = String((site.language && site.language !== 'auto' ? site.language : navigator.language) || 'en').toLowerCase().split('-')[0];
    texts = Object.assign({}, TEXTS.en, TEXTS[lang]);
    language = TEXTS[lang] ? lang : 'en';
    shadow.innerHTML = '<style>' + STYLE + '</style>' + HTML; // static markup only; data goes in via textContent
    widget = find('.widget');
    if (site.color && (!window.CSS || window.CSS.supports('color', site.color))) host.style.setProperty('--bk', site.color);
    shadow.querySelectorAll('[data-text]').forEach((element) => { element.textContent = texts[element.dataset.text]; });
    shadow.querySelectorAll('[data-placeholder]').forEach((element) => { element.placeholder = texts[element.dataset.placeholder]; });
    shadow.querySelectorAll('[data-label]').forEach((element) => { element.setAttribute('aria-label', texts[element.dataset.label]); });
    const actions = {
      toggle: () => (isOpen ? closePanel() : openPanel(true)),
      close: closePanel,
      send: submit,
      mail: sendEmail,
      again: startNewChat,
      accept: () => answerInvitation(true),
      decline: () => answerInvitation(false),
      nomail: () => { updateRecord((record) => { record.mail = 1; }); render(); },
    };
    shadow.addEventListener('click', (event) => {
      const button = event.target.closest && event.target.closest('[data-action]');
      if (button) actions[button.dataset.action]();
    });
    // keys typed in the widget are not the store's shortcuts
    shadow.addEventListener('keydown', (event) => {
      event.stopPropagation();
      if (event.key === 'Escape' && isOpen) closePanel();
    });
    const input = byTestId('input');
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        submit();
      }
    });
    input.addEventListener('input', () => { growInput(); onTyping(); });
    byTestId('offline').addEventListener('submit', leaveOfflineMessage);
    (readRecord().pend || []).forEach((pending) => showPending(pending.c, pending.x));
    setConnectionState(host.dataset.state);
    if (isOpen || readRecord().open) openPanel(false);
    render();
  }

  function start() {
    if (!siteKey || !base) return console.warn('beckon chat: no site key or chat URL');
    host = document.createElement('div');
    host.id = 'beckon-chat';
    host.dataset.state = 'idle';
    shadow = host.attachShadow({ mode: 'open' });
    document.body.appendChild(host);
    window.addEventListener('online', retryNow);
    // an open socket may outlive the network (or its emulation) for minutes: let it go now
    window.addEventListener('offline', () => { if (socket) dropSocket(); });
    window.addEventListener('storage', (event) => { if (event.key === STORAGE_KEY) render(); });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return;
      retryNow();
      markRead();
      render();
    });
    setInterval(() => {
      if (!socket || socket.readyState !== 1) return;
      // no frame for a minute despite pings: a half-open socket that will never close by itself
      if (now() - lastReceivedAt > 6e4) return dropSocket();
      sendFrame({ t: 'ping' });
    }, 25e3);
    boot();
  }

  // for tests and the store's page: a read-only picture, and the panel's two buttons
  window.BeckonChat = {
    state: () => ({
      state: host ? host.dataset.state : 'idle',
      connected: !!socket && socket.readyState === 1,
      conversation,
      lastSeq,
      seen: seenTold.seq,
      language,
      unread: widget ? +byTestId('unread').textContent.replace('+', '') || 0 : 0,
      pending: (readRecord().pend || []).length,
      open: isOpen,
      visitorId,
      invitation: invitation && invitation.id,
      agentsAvailable,
      away,
    }),
    open: () => openPanel(true),
    close: closePanel,
  };
  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
