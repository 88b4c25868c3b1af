/* The console's entry point (index.html loads only this module). Plain ES modules, no build
 * step, under a strict CSP: no inline script or style, and every string from the server goes
 * into the page as text (core/dom.js's h), never as HTML.
 *
 *   core/       what every module shares: events, DOM helpers, the API client, i18n (strings in
 *               i18n/<locale>.js), formatting, who is logged in (me), the views (tabs)
 *   session.js  login, start, logout; socket.js the agent's WebSocket; topbar.js the top bar
 *   chats/      the chats view: lists, the open conversation, the composer, shortcuts
 *   leads/      the leads views (the leads service's API at me.leadsUrl): inbox.js, reports.js, admin.js
 *   email/      the e-mail views (the notifier's API at me.notifierUrl): inbox.js (offline
 *               messages, every agent), admin.js (delivery log, settings, template previews)
 *   links.js    deep links (#conversation=<id>, #lead=<id>) from the notifier's e-mails
 *   live.js, card.js, toolkit.js, reports.js, admin.js: one module per feature; each imports
 *               what it uses, registers its view (views.register) and listens to events
 *               (on('frame:<t>') for its socket frames, 'ready', 'reset', 'locale', ...).
 *
 * Import order is evaluation order, and so the order of listeners to the same event: the
 * chats view first, then the features in the order of their tabs.
 */
import { boot } from './session.js';
import './live.js';
import './card.js';
import './toolkit.js';
import './reports.js';
import './admin.js';
import './leads/inbox.js';
import './leads/reports.js';
import './leads/admin.js';
import './email/inbox.js';
import './email/admin.js';
import './links.js';

boot();
