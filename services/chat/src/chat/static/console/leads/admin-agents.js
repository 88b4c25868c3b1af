/* The Leads admin's agents section: every agent the leads service knows (GET /v1/leads/agents:
 * the site's presence, chat's teams), with their open leads against their cap. Per agent:
 *
 * - the open-lead cap (empty: the site's default) and whether they take leads at all
 *   (`deactivated`: no new leads, and their open ones go to the next free agent of the team):
 *   PUT /v1/leads/agents/{id}, the leads service's own settings;
 * - their teams: chat's membership (POST /v1/console/admin/agents/{id} {teams}), the one the
 *   leads service follows through agents.presence; it shows here once presence carries it.
 *
 * The server's problems are shown at their field (the cap's range, an unknown team). */
import { api } from '../core/api.js';
import { clear, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { me, teamName } from '../core/me.js';
import { leadsApi } from './api.js';
import { button, checks, clearProblems, enc, errorSlot, note, say, section, showProblems, status } from './admin-forms.js';

// the cap as typed: '' → null (the site's default), digits → a number, else the text as it is
// (the leads service says what is wrong with it, at `max_open_leads`)
export function capValue(text) {
  var value = String(text == null ? '' : text).trim();
  if (value === '') return null;
  return /^\d+$/.test(value) ? Number(value) : value;
}

function same(a, b) { return a.slice().sort().join('\n') === b.slice().sort().join('\n'); }

export function build(root) {
  var table = h('div', { className: 'leads-list-wrap' }, [h('p', { className: 'list-empty', i18n: 'common.loading' })]);
  var problems = errorSlot('');
  root.appendChild(section('leadAdmin.agents.title', [note('leadAdmin.agents.help'), problems, table], 'ladm-agents-section'));
  Promise.all([
    leadsApi('GET', '/agents'),
    api('GET', '/admin/teams').then(function (r) { return r.teams; }, function () { return me.teams; }),
  ]).then(function (found) {
    render(table, found[0].agents || [], found[1].map(function (x) { return x.team; }));
  }, function (err) {
    clear(table);
    showProblems(root, err);
  });
}

function render(table, agents, chatTeams) {
  clear(table);
  if (!agents.length) {
    table.appendChild(h('p', { className: 'list-empty', testid: 'ladm-agents-empty', i18n: 'leadAdmin.agents.empty' }));
    return;
  }
  var head = h('tr', {}, ['leadAdmin.agents.col.agent', 'leadAdmin.agents.col.teams', 'leadAdmin.agents.col.online', 'leadAdmin.agents.col.open', 'leadAdmin.agents.col.cap', 'leadAdmin.agents.col.active', ''].map(function (key) {
    return h('th', { i18n: key || null, attrs: { scope: 'col' } });
  }));
  table.appendChild(h('table', { className: 'leads-table', testid: 'ladm-agents' }, [h('thead', {}, [head]), h('tbody', {}, agents.map(function (agent) {
    return row(agent, chatTeams);
  }))]));
}

function row(agent, chatTeams) {
  var teams = checks('ladm-agent-teams', chatTeams.concat(agent.teams.filter(function (x) { return chatTeams.indexOf(x) < 0; })), agent.teams, teamName);
  var cap = h('input', { testid: 'ladm-agent-cap', attrs: { type: 'number', min: 0, max: 1000, step: 1, size: 5, placeholder: t('leadAdmin.agents.defaultCap'), 'aria-label': t('leadAdmin.agents.col.cap') } });
  cap.value = agent.max_open_leads == null ? '' : String(agent.max_open_leads);
  var active = h('input', { testid: 'ladm-agent-active', attrs: { type: 'checkbox', 'aria-label': t('leadAdmin.agents.col.active') } });
  active.checked = !agent.deactivated;
  var result = status('ladm-agent-status');
  var open = h('td', { className: 'num', testid: 'ladm-agent-open', text: t('leadAdmin.agents.load', { open: agent.open_leads, cap: agent.cap }) });
  var tr = h('tr', { testid: 'ladm-agent', data: { 'agent-id': agent.agent_id, deactivated: agent.deactivated ? 'true' : 'false' } }, [
    h('td', {}, [agent.name || agent.agent_id, h('div', { className: 'lrpt-note', text: agent.agent_id })]),
    h('td', {}, [teams.node, errorSlot('teams')]),
    h('td', { text: agent.online_in.length ? agent.online_in.map(teamName).join(', ') : t('leadAdmin.agents.offline') }),
    open,
    h('td', {}, [cap, errorSlot('max_open_leads')]),
    h('td', {}, [h('label', { className: 'admin-check' }, [active, ' ', h('span', { i18n: 'leadAdmin.agents.takesLeads' })]), errorSlot('deactivated')]),
    h('td', {}, [button('ladm-agent-save', 'common.save', save, true), result, errorSlot('')]),
  ]);

  function save(e) {
    var saving = e.target;
    saving.disabled = true;
    clearProblems(tr);
    say(result, '');
    var wanted = teams.get();
    leadsApi('PUT', '/agents/' + enc(agent.agent_id), { max_open_leads: capValue(cap.value), deactivated: !active.checked }).then(function (saved) {
      agent.max_open_leads = saved.max_open_leads;
      agent.deactivated = saved.deactivated;
      tr.setAttribute('data-deactivated', saved.deactivated ? 'true' : 'false');
      if (same(wanted, agent.teams)) return saved;
      // membership is chat's: leads hears of it through agents.presence
      return api('POST', '/admin/agents/' + enc(agent.agent_id), { teams: wanted }).then(function () {
        agent.teams = wanted;
        return saved;
      });
    }).then(function (saved) {
      saving.disabled = false;
      var handed = (saved.assigned || []).length;
      say(result, handed ? t('leadAdmin.agents.savedAssigned', { count: handed }) : t('leadAdmin.saved'));
      return leadsApi('GET', '/agents').then(function (found) {  // the cap in force, the load
        var now = (found.agents || []).find(function (a) { return a.agent_id === agent.agent_id; });
        if (now) open.textContent = t('leadAdmin.agents.load', { open: now.open_leads, cap: now.cap });
      }, function () { /* the row keeps what it showed */ });
    }, function (err) {
      saving.disabled = false;
      showProblems(tr, err);
    });
  }
  return tr;
}
