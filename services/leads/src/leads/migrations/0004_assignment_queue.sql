-- A team's queue holds every open lead nobody holds that waits for an agent: new ones, and
-- contacted or qualified ones whose agent gave them back (reassigned with nobody free). One
-- index gives the whole queue in arrival order (leads_queue covers the new ones only).
CREATE INDEX leads_queue_open ON leads.leads (site_id, team, queued_at, lead_id)
    WHERE assignee IS NULL AND queued_at IS NOT NULL AND merged_into IS NULL
      AND status IN ('new', 'contacted', 'qualified');
-- The agents of a team as presence knows them (membership for claims and manual hand-overs;
-- the teams whose queues to drain when an agent's cap changes).
CREATE INDEX presence_by_agent ON leads.presence (site_id, agent_id);
