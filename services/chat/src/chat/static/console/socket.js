/* The agent's WebSocket (/v1/console/ws; protocol: docs/chat.md, "Agent edge"): connects while
 * logged in, pings, reconnects with backoff (checking the session when refused), and hands
 * every frame on as the event 'frame:<t>'. After `hello` it emits 'connected': whatever
 * happened while it was down is fetched again, and features re-subscribe. */
import { api, API } from './core/api.js';
import { $, banner } from './core/dom.js';
import { emit } from './core/events.js';
import { t } from './core/i18n.js';
import { me } from './core/me.js';
import { renderHeader } from './topbar.js';

var PING_MS = 25000;
var PONG_TIMEOUT_MS = 10000;
var BACKOFF_MIN_MS = 1000;
var BACKOFF_MAX_MS = 15000;

export const socket = {
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
      api('GET', '/me').then(function (answer) {
        if (answer && answer.agent) { me.agent = answer.agent; renderHeader(); }
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

// Sends a frame on the agent's socket; false when it is down (the caller falls back to HTTP).
export function send(frame) { return socket.send(frame); }

function setWsState(stateName, label) {
  var node = $('ws-status');
  node.setAttribute('data-state', stateName);
  node.setAttribute('data-i18n', label);
  node.textContent = t(label);
}

function handleFrame(f) {
  if (!f || typeof f.t !== 'string' || !me.agent) return;
  switch (f.t) {
    case 'hello':
      emit('frame:hello', f);  // session.js: the agent as the server knows them
      socket.ready = true;
      socket.attempt = 0;
      setWsState('connected', 'ws.live');
      emit('connected');
      break;
    case 'pong':
      break;
    case 'error':
      // Not in the documented console frames; shown rather than dropped if a server sends one.
      banner(f.detail || f.error || t('error.generic'));
      break;
    default:
      // the chats view's frames (message, typing, conversation, note, transfer, agent) and the
      // features' (the live list, …): on('frame:<t>', fn)
      emit('frame:' + f.t, f);
      break;
  }
}

window.addEventListener('online', function () { socket.now(); });
document.addEventListener('visibilitychange', function () {
  if (document.visibilityState === 'visible') socket.now();
});
