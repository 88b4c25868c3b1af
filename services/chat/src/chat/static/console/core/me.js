/* Who is logged in: the agent (kept current from the socket and the agent's own changes),
 * their site (settings included) and the site's teams. Set by session.js; read by everyone. */
export const me = {
  agent: null,            // null while logged out
  site: null,
  teams: [],              // [{team, name}]
  teamNames: new Map(),   // team -> display name
  leadsUrl: null,         // the leads API's base URL (CHAT_LEADS_URL); null: no leads views
  notifierUrl: null,      // the notifier's base URL (CHAT_NOTIFIER_URL); null: no e-mail views
};

export function setMe(answer) {
  me.agent = answer.agent;
  me.site = answer.site || {};
  me.teams = answer.teams || [];
  me.leadsUrl = answer.leads_url || null;
  me.notifierUrl = answer.notifier_url || null;
  me.teamNames = new Map();
  me.teams.forEach(function (x) { me.teamNames.set(x.team, x.name || x.team); });
}

export function forgetMe() {
  me.agent = null;
  me.site = null;
  me.teams = [];
  me.leadsUrl = null;
  me.notifierUrl = null;
  me.teamNames = new Map();
}

export function isAdmin() { return !!me.agent && me.agent.role === 'admin'; }

// a team's display name (the id when the site has no such team)
export function teamName(team) {
  if (team == null) return '';
  return me.teamNames.get(team) || String(team);
}
