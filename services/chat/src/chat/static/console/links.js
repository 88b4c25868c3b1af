/* Deep links into the console, as the notifier's e-mails make them: `#conversation=<uuid>`
 * opens that conversation in the chats view, `#lead=<uuid>` that lead in the Leads view (when
 * the console has the leads views). The hash is read once logged in ('ready': a link that
 * led to the login form works after it) and whenever it changes, then removed, so the same
 * link followed again opens it again. */
import { showConversation } from './chats/conversation.js';
import { banner } from './core/dom.js';
import { on } from './core/events.js';
import { t } from './core/i18n.js';
import { me } from './core/me.js';
import { showLead } from './leads/inbox.js';

var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// '#lead=<uuid>' -> {kind: 'lead', id}; anything else -> null
export function parseLink(hash) {
  var match = /^#?(lead|conversation)=([^&]+)$/.exec(String(hash || ''));
  if (!match) return null;
  var id = decodeURIComponent(match[2]);
  return UUID.test(id) ? { kind: match[1], id: id.toLowerCase() } : null;
}

function follow() {
  if (!me.agent) return;  // after login ('ready')
  var hash = window.location.hash || '';
  if (!/^#(lead|conversation)=/.test(hash)) return;  // not ours (e.g. #set-password=, admin.js)
  // the link is spent: following it again (another e-mail, the same one) opens it again
  history.replaceState(null, '', window.location.pathname + window.location.search);
  var link = parseLink(hash);
  if (!link) banner(t('links.bad'));
  else if (link.kind === 'conversation') showConversation(link.id);
  else if (!showLead(link.id)) banner(t('links.noLeads'));
}

on('ready', follow);
window.addEventListener('hashchange', follow);
