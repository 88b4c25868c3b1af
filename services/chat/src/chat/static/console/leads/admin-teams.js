/* The Leads admin's teams section: the teams leads are routed to (GET/PUT /v1/leads/teams),
 * each with a display name and a team lead (SLA breaches escalate to them). Saving replaces
 * the list: a team the routing rules in force name cannot go, a team lead must be an agent
 * of the site; the server's problems come back at `teams.<i>.<field>`, shown in that row.
 *
 * A team's id is the chat team whose agents take its leads (chat's Admin → Teams); the id
 * field offers chat's teams. */
import { api } from '../core/api.js';
import { clear, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { me } from '../core/me.js';
import { leadsApi } from './api.js';
import { button, clearProblems, errorSlot, field, note, say, section, showProblems, status } from './admin-forms.js';

export function build(root) {
  var list = h('div', { className: 'ladm-rows', testid: 'ladm-teams' }, [h('p', { className: 'list-empty', i18n: 'common.loading' })]);
  var result = status('ladm-teams-status');
  var datalist = h('datalist', { attrs: { id: 'ladm-chat-teams' } });
  var rows = [];   // [{team, name, lead_agent_id, isNew}]
  var agents = [];

  function render() {
    clear(list);
    if (!rows.length) list.appendChild(h('p', { className: 'list-empty', i18n: 'leadAdmin.teams.empty' }));
    rows.forEach(function (row, i) { list.appendChild(rowNode(row, i)); });
  }

  function rowNode(row, i) {
    var id = h('input', { testid: 'ladm-team-id', attrs: { type: 'text', list: 'ladm-chat-teams', autocomplete: 'off', readonly: row.isNew ? null : true, placeholder: t('leadAdmin.teams.idHint') } });
    id.value = row.team;
    id.addEventListener('input', function () { row.team = id.value.trim(); });
    var name = h('input', { testid: 'ladm-team-name', attrs: { type: 'text', maxlength: 100 } });
    name.value = row.name;
    name.addEventListener('input', function () { row.name = name.value; });
    var options = [h('option', { attrs: { value: '' }, i18n: 'leadAdmin.teams.noLead' })].concat(agents.map(function (a) {
      return h('option', { attrs: { value: a.agent_id }, text: a.name || a.agent_id });
    }));
    if (row.lead_agent_id && !agents.some(function (a) { return a.agent_id === row.lead_agent_id; })) {
      options.push(h('option', { attrs: { value: row.lead_agent_id }, text: row.lead_agent_id }));
    }
    var lead = h('select', { testid: 'ladm-team-lead' }, options);
    lead.value = row.lead_agent_id || '';
    lead.addEventListener('change', function () { row.lead_agent_id = lead.value || null; });
    var at = 'teams.' + i + '.';
    return h('div', { className: 'ladm-row', testid: 'ladm-team', data: { team: row.isNew ? null : row.team } }, [
      field('leadAdmin.teams.id', id, at + 'team'),
      field('leadAdmin.teams.name', name, at + 'name'),
      field('leadAdmin.teams.lead', lead, at + 'lead_agent_id'),
      button('ladm-team-remove', 'leadAdmin.teams.remove', function () { rows.splice(i, 1); render(); }),
      errorSlot('teams.' + i),
    ]);
  }

  function save() {
    clearProblems(root);
    say(result, '');
    var body = rows.map(function (row) { return { team: row.team, name: row.name.trim(), lead_agent_id: row.lead_agent_id || null }; });
    leadsApi('PUT', '/teams', { teams: body }).then(function (saved) {
      load(saved.teams);
      say(result, t('leadAdmin.saved'));
    }, function (err) { showProblems(root, err); });
  }

  function load(teams) {
    rows = teams.map(function (x) { return { team: x.team, name: x.name || '', lead_agent_id: x.lead_agent_id, isNew: false }; });
    render();
  }

  root.appendChild(section('leadAdmin.teams.title', [
    note('leadAdmin.teams.help'),
    datalist,
    list,
    h('div', { className: 'lead-actions' }, [
      button('ladm-team-add', 'leadAdmin.teams.add', function () { rows.push({ team: '', name: '', lead_agent_id: null, isNew: true }); render(); }),
      button('ladm-teams-save', 'leadAdmin.teams.save', save, true),
    ]),
    errorSlot('teams'),
    errorSlot(''),
    result,
  ], 'ladm-teams-section'));

  Promise.all([
    leadsApi('GET', '/teams'),
    leadsApi('GET', '/agents').then(function (r) { return r.agents || []; }, function () { return []; }),
    api('GET', '/admin/teams').then(function (r) { return r.teams; }, function () { return me.teams; }),
  ]).then(function (found) {
    agents = found[1];
    found[2].forEach(function (x) { datalist.appendChild(h('option', { attrs: { value: x.team }, text: x.name || x.team })); });
    load(found[0].teams || []);
  }, function (err) { clear(list); showProblems(root, err); });
}
