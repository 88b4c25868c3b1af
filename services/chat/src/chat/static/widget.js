/*! Beckon chat widget | the protocol is docs/chat.md, the behaviour docs/chat.md#widget */
(function (w, d, n) {
  'use strict';
  if (w.BeckonChat) return;
  const me = d.currentScript;
  const tracker = w.beckon;
  const conf = (tracker && tracker.chat) || {};
  // standalone use: <script src="https://CHAT/widget.js" data-site-key="pk_…">
  const siteKey = conf.siteKey || (me && me.dataset.siteKey);
  const base = (conf.url || (me && me.src ? me.src.replace(/\/[^/]*$/, '') : '')).replace(/\/+$/, '');
  const KEY = 'beckon_chat_' + siteKey;

  // Add a language by adding a key; missing texts fall back to English.
  const TEXTS = {
    en: {
      title: 'Chat with us', placeholder: 'Write a message…', send: 'Send', typing: 'Agent is typing…',
      queue: 'You are number {n} in the queue', wait: 'Waiting for an agent…',
      closed: 'The chat has ended.', again: 'Start a new chat',
      mailAsk: 'Get the transcript by e-mail', mailThanks: 'Thanks! The transcript will come by e-mail.',
      mailAskContact: 'Leave your e-mail so we can get back to you', mailThanksContact: 'Thanks! We have your e-mail.',
      email: 'Your e-mail', name: 'Your name (optional)', message: 'Your message',
      offline: 'We are away right now. Leave a message and we will answer by e-mail.',
      leave: 'Send message', thanks: 'Thanks! We will get back to you by e-mail.',
      accept: 'Chat now', decline: 'No thanks', open: 'Open chat', close: 'Close', dismiss: 'Dismiss',
      online: 'online', reconnecting: 'reconnecting…', ended: 'chat ended', failed: 'Not sent',
      error: 'Something went wrong. Please try again.',
    },
    fi: {
      title: 'Keskustele kanssamme', placeholder: 'Kirjoita viesti…', send: 'Lähetä',
      typing: 'Asiakaspalvelija kirjoittaa…', queue: 'Olet jonossa sijalla {n}',
      wait: 'Odotetaan asiakaspalvelijaa…', closed: 'Keskustelu on päättynyt.', again: 'Aloita uusi keskustelu',
      mailAsk: 'Tilaa keskustelu sähköpostiisi', mailThanks: 'Kiitos! Keskustelu tulee sähköpostiisi.',
      mailAskContact: 'Jätä sähköpostiosoitteesi, niin otamme yhteyttä', mailThanksContact: 'Kiitos! Saimme sähköpostiosoitteesi.',
      email: 'Sähköpostiosoitteesi', name: 'Nimesi (vapaaehtoinen)', message: 'Viestisi',
      offline: 'Emme ole nyt paikalla. Jätä viesti, niin vastaamme sähköpostitse.',
      leave: 'Lähetä viesti', thanks: 'Kiitos! Vastaamme sinulle sähköpostitse.',
      accept: 'Keskustele nyt', decline: 'Ei kiitos', open: 'Avaa chat', close: 'Sulje', dismiss: 'Ohita',
      online: 'yhteydessä', reconnecting: 'yhdistetään…', ended: 'keskustelu päättyi', failed: 'Ei lähetetty',
      error: 'Jokin meni vikaan. Yritä uudelleen.',
    },
  };
  let T = TEXTS.en;

  const STYLE = `:host{all:initial;--bk:#2563eb}
[hidden]{display:none!important}
.w{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328}
button,input,textarea{font:inherit;color:inherit;box-sizing:border-box;margin:0}
button{cursor:pointer;border:0;border-radius:8px;padding:8px 12px;background:#eef0f3}
button:disabled{opacity:.6;cursor:default}
input,textarea{width:100%;padding:8px 10px;border:1px solid #d0d7de;border-radius:8px;background:#fff}
textarea{resize:none}
.pri{background:var(--bk);color:#fff}
.launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;padding:0;background:var(--bk);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}
.launch svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#d1242f;color:#fff;font-size:12px;line-height:20px;text-align:center;box-sizing:border-box}
.panel,.inv{position:fixed;right:20px;bottom:88px;z-index:2147483001;background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25)}
.panel{width:min(370px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));display:flex;flex-direction:column;overflow:hidden}
.inv{width:min(300px,calc(100vw - 40px));padding:14px;box-sizing:border-box}
.inv p{margin:8px 0 12px;white-space:pre-wrap;overflow-wrap:anywhere}
.who,header{display:flex;align-items:center;gap:10px}
.who{font-weight:600}
header{padding:12px 14px;background:var(--bk);color:#fff}
.av{width:36px;height:36px;border-radius:50%;object-fit:cover;flex:none}
.ttl{flex:1;min-width:0;display:flex;flex-direction:column}
.ttl b,.ttl span{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.ttl small{font-size:12px;opacity:.85}
.x{background:none;color:inherit;font-size:20px;line-height:1;padding:2px 6px}
.scroll{flex:1;min-height:0;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px}
.msgs{display:flex;flex-direction:column;gap:6px}
.m{max-width:80%;padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}
.visitor{align-self:flex-end;background:var(--bk);color:#fff;border-bottom-right-radius:4px}
.agent{align-self:flex-start;background:#eef0f3;border-bottom-left-radius:4px}
.agent[data-name]::before{content:attr(data-name);display:block;font-size:11px;color:#57606a}
.system{align-self:center;color:#57606a;font-size:12px;text-align:center}
[data-pending]{opacity:.6}
[data-failed]{opacity:1;background:#d1242f}
[data-failed]::after{content:attr(data-failed);display:block;font-size:11px}
.info{padding:4px 14px;font-size:12px;color:#57606a}
.err{color:#d1242f}
.mail,.end,.off,.compose{padding:10px 14px;border-top:1px solid #e5e7eb;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.mail .lbl{flex:1;font-size:13px}
.row{display:flex;gap:8px;width:100%}
.end p,.off p{margin:0;width:100%}
.compose{flex-wrap:nowrap;align-items:flex-end}
.compose textarea{max-height:120px}
@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100%;border-radius:0}}`;

  const HTML = `<div class="w">
<div class="inv" role="dialog" data-testid="beckon-invitation" hidden>
<div class="who"><img class="av" alt="" hidden><span class="nm" data-testid="beckon-agent-name"></span></div>
<p data-testid="beckon-invitation-text"></p>
<div class="row"><button class="pri" data-a="accept" data-testid="beckon-accept" data-t="accept"></button><button data-a="decline" data-testid="beckon-decline" data-t="decline"></button></div>
</div>
<section class="panel" role="dialog" data-testid="beckon-panel" hidden>
<header><img class="av" alt="" hidden><div class="ttl"><b class="nm" data-testid="beckon-agent-name" hidden></b><span class="greet"></span><small data-testid="beckon-status"></small></div><button class="x" data-a="close" data-l="close">×</button></header>
<div class="scroll"><div class="m agent intro" data-testid="beckon-opening" hidden></div><div class="msgs" data-testid="beckon-messages" aria-live="polite"></div></div>
<div class="info" data-testid="beckon-typing" data-t="typing" hidden></div>
<div class="info" data-testid="beckon-queue" hidden></div>
<div class="info err" data-testid="beckon-error" role="alert" hidden></div>
<div class="mail" data-testid="beckon-email" hidden><span class="lbl"></span><button class="x" data-a="nomail" data-l="dismiss">×</button><div class="row"><input type="email" required autocomplete="email" data-testid="beckon-email-input" data-p="email"><button data-a="mail" data-testid="beckon-email-send" data-t="send"></button></div></div>
<div class="end" hidden><p data-testid="beckon-note"></p><button class="pri" data-a="again" data-testid="beckon-new-chat" data-t="again"></button></div>
<form class="off" data-testid="beckon-offline" hidden><p class="lbl"></p><input name="name" autocomplete="name" data-p="name"><input name="email" type="email" required autocomplete="email" data-testid="beckon-offline-email" data-p="email"><textarea name="text" rows="3" required data-testid="beckon-offline-text" data-p="message"></textarea><button class="pri" data-testid="beckon-offline-send" data-t="leave"></button></form>
<div class="compose" hidden><textarea rows="1" data-testid="beckon-input" data-p="placeholder"></textarea><button class="pri" data-a="send" data-testid="beckon-send" data-t="send"></button></div>
</section>
<button class="launch" data-a="toggle" data-testid="beckon-launcher" data-l="open" aria-expanded="false"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M5 3h14a3 3 0 0 1 3 3v9a3 3 0 0 1-3 3H9l-5 4v-4.2A3 3 0 0 1 2 15V6a3 3 0 0 1 3-3z"/></svg><span class="badge" data-testid="beckon-unread" hidden></span></button>
</div>`;

  const now = () => Date.now();
  const noop = () => {};
  const LIVE = ['queued', 'open'];
  const AUTHORS = ['visitor', 'agent', 'system'];

  // --- storage: one JSON record per site, re-read before every change so tabs do not clobber each other
  let ls = null, mem = {};
  try { ls = w.localStorage; } catch (e) { /* storage blocked: memory only */ }
  function S() {
    let s = null;
    try { s = JSON.parse(ls.getItem(KEY)); } catch (e) { /* none */ }
    return s || mem;
  }
  function upd(f) {
    const s = S();
    f(s);
    mem = s;
    try { ls.setItem(KEY, JSON.stringify(s)); } catch (e) { /* memory only */ }
    return s;
  }

  const rand = (k) => (w.crypto && crypto.getRandomValues ? crypto.getRandomValues(new Uint8Array(k)) : Uint8Array.from({ length: k }, () => Math.random() * 256));
  const uuid = () => (w.crypto && crypto.randomUUID ? crypto.randomUUID() : Array.from(rand(16), (b) => (b + 256).toString(16).slice(1)).join(''));

  // The tracker's id links chat and browsing; a visitor who declined tracking still gets a chat id.
  let vid = null;
  function visitor() {
    const t = tracker && tracker.visitorId && tracker.visitorId();
    if (t) return (vid = t);
    if (!vid) {
      try { vid = ls.getItem('beckon_chat_vid'); } catch (e) { /* none */ }
      if (!vid) {
        vid = uuid();
        try { ls.setItem('beckon_chat_vid', vid); } catch (e) { /* memory only */ }
      }
    }
    return vid;
  }

  // --- state
  let host, root, ui = null, site = {}, avail = true, token = null, conv = null, lastSeq = 0, loaded = false;
  let ws = null, ever = false, attempt = 0, fails = 0, retryT = 0, next = null, lastRx = 0, sessP = null;
  let isOpen = false, inv = null, invT = 0, invId = null, creating = false, ackT = 0, ding = false;
  let tyOn = false, tyLast = 0, tyT = 0, idleT = 0, tyInT = 0, errT = 0, mailUntil = 0, ac = null;
  const byId = new Map(), byCid = new Map();

  const live = () => !!conv && LIVE.includes(conv.status);
  const away = () => !isOpen || d.hidden;
  const $ = (id) => root.querySelector('[data-testid="beckon-' + id + '"]');
  const q = (sel) => root.querySelector(sel);

  // --- HTTP
  async function call(method, path, body, anon, again) {
    const headers = {};
    if (token && !anon) headers.Authorization = 'Bearer ' + token;
    if (body) headers['Content-Type'] = 'application/json';
    const r = await fetch(base + path, { method, headers, body: body && JSON.stringify(body), credentials: 'omit' });
    if (r.status == 401 && !anon && !again) {
      await renew();
      return call(method, path, body, 0, 1);
    }
    if (!r.ok) {
      const e = new Error('beckon chat: ' + r.status + ' ' + path);
      e.status = r.status;
      e.after = (+r.headers.get('Retry-After') || 0) * 1e3;
      throw e;
    }
    return r.status == 204 ? null : r.json();
  }
  // 4xx other than 401/408/429 would fail again
  const hopeless = (e) => e.status >= 400 && e.status < 500 && ![401, 408, 429].includes(e.status);

  async function session() {
    const r = await call('POST', '/v1/widget/session', { site_key: siteKey, visitor_id: visitor(), lang: n.language }, 1);
    token = r.token;
    site = r.site || {};
    avail = r.agents_available !== false;
    if (!ui) build();
    applyConv(r.conversation);
  }
  // several calls may see 401 at once; one new session serves them all
  const renew = () => sessP || (sessP = session().finally(() => { sessP = null; }));

  // --- connection
  function setState(x) {
    if (x == 'connected') ever = true;
    else if (x == 'reconnecting' && !ever) x = 'connecting';
    host.dataset.state = x;
    status();
  }

  // The header's line: the connection, but "chat ended" once the conversation is over (the
  // socket stays up for a new chat, yet nobody is there to answer this one).
  function status() {
    if (!ui) return;
    const st = $('status'), x = host.dataset.state;
    const k = conv && !live() ? 'ended' : x == 'connected' ? 'online' : 'reconnecting';
    st.dataset.status = k;
    st.textContent = T[k];
  }

  function retry(fn, least) {
    clearTimeout(retryT);
    // while the browser says it is offline, the 'online' event comes first
    const b = n.onLine === false ? 3e4 : Math.min(3e4, 1e3 * 2 ** attempt);
    attempt = Math.min(attempt + 1, 10);
    next = fn;
    retryT = setTimeout(() => { next = null; fn(); }, Math.max(least || 0, b / 2 + (Math.random() * b) / 2));
  }
  function hurry() {
    if (!next) return;
    const fn = next;
    clearTimeout(retryT);
    next = null;
    attempt = 0;
    fn();
  }

  async function boot() {
    setState('reconnecting');
    try {
      await renew();
    } catch (e) {
      if (hopeless(e)) {
        console.warn(e.message);
        host.style.display = 'none';
        return setState('idle');
      }
      return retry(boot, e.after);
    }
    fails = 0;
    if (conv && !loaded) {
      loaded = true;
      try {
        const r = await call('GET', '/v1/widget/messages?after=0');
        (r.messages || []).forEach((m) => add(m, 0));
        done();
      } catch (e) { /* sync after hello fills in */ }
    }
    connect();
  }

  function connect() {
    clearTimeout(retryT);
    next = null;
    if (ws) {
      ws.onclose = null;
      try { ws.close(); } catch (e) { /* already closed */ }
      ws = null;
      setState('reconnecting');
    }
    if (!token) return boot();
    let opened = false, s;
    try {
      s = ws = new WebSocket(base.replace(/^http/, 'ws') + '/v1/widget/ws?token=' + encodeURIComponent(token));
    } catch (e) {
      return lost(0, false);
    }
    s.onopen = () => {
      opened = true;
      fails = 0;
      lastRx = now();
      setState('connected');
    };
    s.onmessage = (e) => {
      lastRx = now();
      let f = null;
      try { f = JSON.parse(e.data); } catch (x) { /* not ours */ }
      if (f) frame(f);
    };
    s.onclose = (e) => { if (ws == s) lost(e.code, opened); };
  }

  function lost(code, opened) {
    ws = null;
    clearTimeout(ackT);
    showTyping(false);
    setState('reconnecting');
    if (!opened) fails++;
    // A refused handshake is invisible to a page (close 1006): two in a row may mean a stale token.
    retry(code == 4401 || fails >= 2 ? boot : connect);
  }

  function drop() {
    ws.onclose = null;
    ws.close();
    lost(1006, true);
  }

  function tx(o) {
    if (!ws || ws.readyState != 1) return false;
    ws.send(JSON.stringify(o));
    return true;
  }
  const sync = () => conv && tx({ t: 'sync', after: lastSeq });

  function frame(f) {
    if (f.t == 'hello') {
      attempt = 0; // only now: a server that accepts and drops at once still gets backed off
      applyConv(f.conversation);
      sync();
      flush();
      invite((f.invitations || []).filter(valid).pop());
    } else if (f.t == 'invitation') invite(f.invitation);
    else if (f.t == 'message') {
      add(f.message, 1);
      done();
    } else if (f.t == 'messages') {
      (f.messages || []).slice().sort((a, b) => a.seq - b.seq).forEach((m) => add(m, 2));
      done();
    } else if (f.t == 'typing') showTyping(f.on);
    else if (f.t == 'conversation') {
      applyConv(f.conversation);
      if (f.conversation && f.conversation.last_seq > lastSeq) sync();
    } else if (f.t == 'error') console.warn('beckon chat:', f.error, f.detail);
  }

  // --- conversation and messages
  function applyConv(c) {
    if (!c || !c.id) return;
    // a conversation the visitor left with "new chat" stays left until it comes back to life
    if ((S().gone || []).includes(c.id) && !LIVE.includes(c.status)) return;
    if (conv && conv.id != c.id) {
      for (const e of Array.from(list().children)) if (e.dataset.id) e.remove();
      for (const [k, e] of byCid) if (e.dataset.id) byCid.delete(k);
      byId.clear();
      lastSeq = 0;
      upd((s) => { s.intro = null; });
    }
    conv = c;
    upd((s) => {
      if (s.conv != c.id) {
        s.conv = c.id;
        s.seq = s.read = 0;
      }
      // the invitation that opened it, as the server has it (frames leave it out): the
      // agent's first words, the same the agent's console shows, on any device
      if ('opening' in c) s.intro = c.opening && c.opening.text ? { x: c.opening.text, a: c.opening.agent && c.opening.agent.name } : null;
    });
    if (!live()) stopTyping();
    render();
  }

  const list = () => $('messages');

  function msgEl(m) {
    const e = d.createElement('div');
    const a = AUTHORS.includes(m.author) ? m.author : 'system';
    e.className = 'm ' + a;
    e.setAttribute('data-testid', 'beckon-message');
    e.dataset.author = a;
    e.textContent = m.text;
    // the name is drawn by CSS so that the element's text stays the message text
    if (a == 'agent' && m.agent && m.agent.name) e.dataset.name = m.agent.name;
    if (m.created_at) e.title = new Date(m.created_at).toLocaleString();
    return e;
  }

  function place(e, seq) {
    let ref = null;
    for (const c of list().children) {
      if (c != e && (!c.dataset.seq || +c.dataset.seq > seq)) { ref = c; break; }
    }
    list().insertBefore(e, ref);
  }

  // kind: 0 history, 1 live frame, 2 sync answer
  function add(m, kind) {
    if (!ui || !m || !m.id || byId.has(m.id)) return;
    const cv = m.conversation_id;
    if (cv && (conv ? cv != conv.id : (S().gone || []).includes(cv))) return;
    const cid = m.client_id;
    let e = cid && byCid.get(cid);
    if (e) {
      e.removeAttribute('data-pending');
      e.removeAttribute('data-failed');
      e.textContent = m.text;
    } else e = msgEl(m);
    e.dataset.id = m.id;
    e.dataset.seq = m.seq;
    byId.set(m.id, e);
    place(e, m.seq);
    if (cid) {
      byCid.set(cid, e);
      unpend(cid);
    }
    if (kind == 1 && m.seq > lastSeq + 1) sync(); // a gap: fetch what was missed
    if (m.seq > lastSeq) lastSeq = m.seq;
    if (m.author == 'agent') {
      showTyping(false);
      if (kind && away() && m.seq > (S().read || 0)) ding = true;
    }
  }

  function done() {
    if (!ui) return;
    upd((s) => { s.seq = lastSeq; });
    seen();
    render();
    const sc = q('.scroll');
    sc.scrollTop = sc.scrollHeight;
    if (ding) beep();
    ding = false;
  }

  function seen() {
    if (isOpen && !d.hidden && conv) upd((s) => { s.read = Math.max(s.read || 0, lastSeq); });
  }

  function unpend(cid) {
    upd((s) => { s.pend = (s.pend || []).filter((p) => p.c != cid); });
  }

  function optimistic(cid, text) {
    const e = msgEl({ author: 'visitor', text });
    e.dataset.pending = 1;
    byCid.set(cid, e);
    list().appendChild(e);
  }

  function fail(cid) {
    unpend(cid);
    const e = byCid.get(cid);
    if (e) e.dataset.failed = T.failed;
  }

  function submit() {
    const input = $('input'), text = input.value.trim();
    if (!text) return;
    input.value = '';
    grow();
    stopTyping();
    const cid = uuid();
    upd((s) => { (s.pend = s.pend || []).push({ c: cid, x: text }); });
    optimistic(cid, text);
    done();
    flush();
  }

  // Pending messages go out again, same client_id, until the server's copy comes back; it dedupes.
  async function flush() {
    clearTimeout(ackT);
    const p = S().pend || [];
    if (!p.length || !token) return;
    if (live()) {
      if (!p.every((m) => tx({ t: 'message', client_id: m.c, text: m.x }))) return; // hello flushes
      ackT = setTimeout(unacked, 8e3);
      return;
    }
    if (creating) return;
    creating = true;
    const m = p[0], body = { text: m.x, client_id: m.c };
    if (invId) body.invitation_id = invId;
    let ok = false;
    try {
      adopt(await call('POST', '/v1/widget/conversations', body));
      ok = true;
    } catch (e) {
      if (hopeless(e)) {
        fail(m.c);
        oops();
      } else ackT = setTimeout(flush, Math.max(5e3, e.after || 0));
    } finally {
      creating = false;
    }
    if (ok) flush();
  }

  function unacked() {
    let gaveUp = [];
    upd((s) => {
      (s.pend || []).forEach((m) => { m.n = (m.n || 0) + 1; });
      gaveUp = (s.pend || []).filter((m) => m.n > 5).map((m) => m.c);
    });
    gaveUp.forEach(fail);
    sync();
    flush();
  }

  // A conversation answer may carry a new token bound to it: the socket must use that one.
  function adopt(r) {
    if (!r) return;
    const changed = r.token && r.token != token;
    if (r.token) token = r.token;
    invId = null;
    applyConv(r.conversation);
    if (changed && ws) connect();
  }

  function again() {
    const id = conv && conv.id;
    upd((s) => {
      if (id) s.gone = (s.gone || []).concat(id).slice(-20);
      s.conv = s.intro = null;
      s.seq = s.read = 0;
    });
    conv = null;
    lastSeq = 0;
    byId.clear();
    byCid.clear();
    list().textContent = '';
    render();
    focus();
  }

  // --- typing
  function typing() {
    if (!live()) return;
    clearTimeout(idleT);
    idleT = setTimeout(stopTyping, 3e3);
    const wait = tyLast + 300 - now();
    if (wait > 0) {
      if (!tyT) tyT = setTimeout(() => { tyT = 0; sendTyping(); }, wait);
    } else sendTyping();
  }
  function sendTyping() {
    const text = $('input').value;
    if (!text.trim()) return stopTyping();
    tyLast = now();
    tyOn = true;
    const f = { t: 'typing', on: true };
    if (site.typing_preview) f.preview = text;
    tx(f);
  }
  function stopTyping() {
    clearTimeout(idleT);
    clearTimeout(tyT);
    tyT = 0;
    if (tyOn) {
      tyOn = false;
      tx({ t: 'typing', on: false });
    }
  }
  function showTyping(on) {
    clearTimeout(tyInT);
    if (!ui) return;
    $('typing').hidden = !on;
    if (on) tyInT = setTimeout(() => showTyping(false), 6e3);
  }

  // --- invitations
  function valid(i) {
    const st = i && i.id && (S().inv || {})[i.id];
    return !!(i && i.id) && st != 'a' && st != 'd' && !(Date.parse(i.expires_at) <= now());
  }
  function mark(id, v) {
    upd((s) => {
      const o = (s.inv = s.inv || {}), k = Object.keys(o);
      o[id] = v;
      if (k.length >= 50) delete o[k[0]];
    });
  }
  function invite(i) {
    if (!valid(i) || live()) return;
    inv = i;
    clearTimeout(invT);
    const left = Date.parse(i.expires_at) - now();
    if (left > 0) invT = setTimeout(() => { inv = null; showInv(); }, Math.min(left, 2e9));
    showInv();
  }
  function showInv() {
    if (!ui) return;
    if (inv && !valid(inv)) inv = null;
    const el = $('invitation'), show = !!inv && !isOpen && !live();
    el.hidden = !show;
    if (!show) return;
    const a = inv.agent;
    $('invitation-text').textContent = inv.message || '';
    q('.who').hidden = !a;
    q('.inv .nm').textContent = a ? a.name : '';
    avatar(q('.inv .av'), a);
    if (!(S().inv || {})[inv.id]) {
      mark(inv.id, 's');
      call('POST', '/v1/widget/invitations/' + encodeURIComponent(inv.id) + '/shown').catch(noop);
    }
  }
  async function answer(yes) {
    const i = inv;
    if (!i) return;
    inv = null;
    clearTimeout(invT);
    mark(i.id, yes ? 'a' : 'd');
    showInv();
    const told = call('POST', '/v1/widget/invitations/' + encodeURIComponent(i.id) + (yes ? '/accepted' : '/declined')).catch(noop);
    if (!yes) return;
    invId = i.id; // if the next call fails, the first message carries it
    const intro = { x: i.message, a: i.agent && i.agent.name };
    upd((s) => { s.intro = intro; });
    open(true);
    await told;
    try {
      adopt(await call('POST', '/v1/widget/conversations', { invitation_id: i.id }));
      render();
      flush();
    } catch (e) {
      if (hopeless(e)) oops();
    }
  }

  // --- panel
  function avatar(img, a) {
    const u = a && a.avatar_url;
    img.hidden = !(u && /^https?:\/\//i.test(u));
    img.onerror = () => { img.hidden = true; };
    if (!img.hidden && img.src != u) img.src = u;
  }

  function oops() {
    const e = $('error');
    e.textContent = T.error;
    e.hidden = false;
    clearTimeout(errT);
    errT = setTimeout(() => { e.hidden = true; }, 6e3);
  }

  function render() {
    if (!ui) return;
    const s = S(), c = conv, lv = live(), ag = c && c.agent, ended = !!c && !lv;
    const name = q('header .nm');
    name.hidden = !ag;
    name.textContent = ag ? ag.name : '';
    q('.greet').hidden = !!ag;
    q('.greet').textContent = site.greeting || T.title;
    avatar(q('header .av'), ag);
    const qu = $('queue');
    qu.hidden = !(c && c.status == 'queued');
    qu.textContent = c && c.queue_position ? T.queue.replace('{n}', c.queue_position) : T.wait;
    q('.end').hidden = !ended;
    $('note').textContent = ended && c.status == 'offline' ? T.thanks : T.closed;
    $('note').dataset.kind = ended ? c.status : '';
    const offline = !c && !avail && site.offline !== false;
    $('offline').hidden = !offline;
    q('.off .lbl').textContent = typeof site.offline == 'string' && site.offline ? site.offline : T.offline;
    q('.compose').hidden = !(lv || (!c && !offline));
    const mail = $('email');
    mail.hidden = !c || c.status == 'offline' || (!!s.mail && now() > mailUntil);
    // a transcript is promised only where the site sends e-mail (site.email_transcripts)
    const tr = site.email_transcripts === true;
    mail.dataset.kind = tr ? 'transcript' : 'contact';
    q('.mail .lbl').textContent = now() < mailUntil ? (tr ? T.mailThanks : T.mailThanksContact) : (tr ? T.mailAsk : T.mailAskContact);
    q('.mail .row').hidden = now() < mailUntil;
    const intro = q('.intro'), it = s.intro;
    intro.textContent = (it && it.x) || '';
    if (it && it.a) intro.dataset.name = it.a;
    else intro.removeAttribute('data-name');
    intro.hidden = !it || !it.x || Array.from(list().children).some((e) => e.textContent == it.x);
    status();
    let k = 0;
    for (const e of list().children) if (e.dataset.author == 'agent' && +e.dataset.seq > (s.read || 0)) k++;
    k = away() ? k : 0;
    $('unread').hidden = !k;
    $('unread').textContent = k > 9 ? '9+' : k;
    showInv();
  }

  function focus() {
    const c = q('.compose');
    (c.hidden ? $('offline-email') : $('input')).focus();
  }

  function open(user) {
    isOpen = true;
    if (!ui) return;
    $('panel').hidden = false;
    $('launcher').setAttribute('aria-expanded', 'true');
    upd((s) => { s.open = 1; });
    seen();
    render();
    const sc = q('.scroll');
    sc.scrollTop = sc.scrollHeight;
    if (user) focus();
  }
  function close() {
    isOpen = false;
    if (!ui) return;
    $('panel').hidden = true;
    $('launcher').setAttribute('aria-expanded', 'false');
    upd((s) => { s.open = 0; });
    render();
  }

  async function mail() {
    const input = $('email-input'), v = input.value.trim();
    if (!v || !input.checkValidity()) return input.reportValidity();
    const b = $('email-send');
    b.disabled = true;
    try {
      await call('POST', '/v1/widget/email', { email: v });
      input.removeAttribute('aria-invalid');
      mailUntil = now() + 4e3;
      upd((s) => { s.mail = 1; });
      setTimeout(render, 4100);
    } catch (e) {
      input.setAttribute('aria-invalid', 'true');
      oops();
    }
    b.disabled = false;
    render();
  }

  async function leave(ev) {
    ev.preventDefault();
    const f = $('offline'), get = (k) => f.querySelector('[name=' + k + ']').value.trim();
    const body = { email: get('email'), text: get('text') };
    if (!body.text) return f.querySelector('[name=text]').focus();
    if (get('name')) body.name = get('name');
    const b = $('offline-send');
    b.disabled = true;
    try {
      const r = await call('POST', '/v1/widget/offline', body);
      f.reset();
      upd((s) => { s.mail = 1; }); // the address is known now
      applyConv((r && r.conversation) || { id: 'offline-' + uuid(), status: 'offline' });
    } catch (e) {
      oops();
    }
    b.disabled = false;
  }

  function grow() {
    const t = $('input');
    t.style.height = 'auto';
    t.style.height = Math.min(t.scrollHeight, 120) + 'px';
  }

  function beep() {
    try {
      ac = ac || new (w.AudioContext || w.webkitAudioContext)();
      if (ac.state == 'suspended') ac.resume().catch(noop);
      const o = ac.createOscillator(), g = ac.createGain(), t = ac.currentTime;
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.08, t);
      g.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      o.connect(g);
      g.connect(ac.destination);
      o.start(t);
      o.stop(t + 0.25);
    } catch (e) { /* autoplay policy or no WebAudio */ }
  }

  function build() {
    const lang = String((site.language && site.language != 'auto' ? site.language : n.language) || 'en').toLowerCase().split('-')[0];
    T = Object.assign({}, TEXTS.en, TEXTS[lang]);
    root.innerHTML = '<style>' + STYLE + '</style>' + HTML; // static markup only; data goes in via textContent
    ui = q('.w');
    if (site.color && (!w.CSS || w.CSS.supports('color', site.color))) host.style.setProperty('--bk', site.color);
    root.querySelectorAll('[data-t]').forEach((e) => { e.textContent = T[e.dataset.t]; });
    root.querySelectorAll('[data-p]').forEach((e) => { e.placeholder = T[e.dataset.p]; });
    root.querySelectorAll('[data-l]').forEach((e) => { e.setAttribute('aria-label', T[e.dataset.l]); });
    const acts = {
      toggle: () => (isOpen ? close() : open(true)),
      close, send: submit, mail, again,
      accept: () => answer(true),
      decline: () => answer(false),
      nomail: () => { upd((s) => { s.mail = 1; }); render(); },
    };
    root.addEventListener('click', (e) => {
      const b = e.target.closest && e.target.closest('[data-a]');
      if (b) acts[b.dataset.a]();
    });
    // keys typed in the widget are not the store's shortcuts
    root.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key == 'Escape' && isOpen) close();
    });
    const input = $('input');
    input.addEventListener('keydown', (e) => {
      if (e.key == 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode != 229) {
        e.preventDefault();
        submit();
      }
    });
    input.addEventListener('input', () => { grow(); typing(); });
    $('offline').addEventListener('submit', leave);
    (S().pend || []).forEach((p) => optimistic(p.c, p.x));
    setState(host.dataset.state);
    if (isOpen || S().open) open(false);
    render();
  }

  function start() {
    if (!siteKey || !base) return console.warn('beckon chat: no site key or chat URL');
    host = d.createElement('div');
    host.id = 'beckon-chat';
    host.dataset.state = 'idle';
    root = host.attachShadow({ mode: 'open' });
    d.body.appendChild(host);
    w.addEventListener('online', hurry);
    // an open socket may outlive the network (or its emulation) for minutes: let it go now
    w.addEventListener('offline', () => { if (ws) drop(); });
    w.addEventListener('storage', (e) => { if (e.key == KEY) render(); });
    d.addEventListener('visibilitychange', () => {
      if (d.hidden) return;
      hurry();
      seen();
      render();
    });
    setInterval(() => {
      if (!ws || ws.readyState != 1) return;
      // no frame for a minute despite pings: a half-open socket that will never close by itself
      if (now() - lastRx > 6e4) return drop();
      tx({ t: 'ping' });
    }, 25e3);
    boot();
  }

  w.BeckonChat = {
    state: () => ({
      state: host ? host.dataset.state : 'idle',
      connected: !!ws && ws.readyState == 1,
      conversation: conv,
      lastSeq,
      unread: ui ? +$('unread').textContent.replace('+', '') || 0 : 0,
      pending: (S().pend || []).length,
      open: isOpen,
      visitorId: vid,
      invitation: inv && inv.id,
      agentsAvailable: avail,
    }),
    open: () => open(true),
    close,
  };
  if (d.body) start();
  else d.addEventListener('DOMContentLoaded', start);
})(window, document, navigator);
