-- An agent's open leads (what the cap counts: assigned, contacted, qualified, not merged away),
-- kept on the agent's row. Every assignment reads it under the agent's row lock: counting the
-- agent's leads instead cost a look at each of them, the most expensive statement of capture.
-- A trigger keeps it, so no writer of leads.leads (capture, assignment, status changes, merges,
-- the SLA scheduler's reassignments, erasure) can forget it; it changes the agent's row in the
-- writer's transaction, so a reader that holds the row lock sees every committed change.
ALTER TABLE leads.agents ADD COLUMN open_leads integer NOT NULL DEFAULT 0;

UPDATE leads.agents AS a SET open_leads = held.n
FROM (SELECT site_id, assignee, count(*) AS n FROM leads.leads
      WHERE assignee IS NOT NULL AND merged_into IS NULL
        AND status IN ('assigned', 'contacted', 'qualified')
      GROUP BY site_id, assignee) AS held
WHERE a.site_id = held.site_id AND a.agent_id = held.assignee;

CREATE FUNCTION leads.count_open_leads() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    was text;
    is_now text;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.merged_into IS NULL
       AND OLD.status IN ('assigned', 'contacted', 'qualified') THEN
        was := OLD.assignee;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.merged_into IS NULL
       AND NEW.status IN ('assigned', 'contacted', 'qualified') THEN
        is_now := NEW.assignee;
    END IF;
    IF was IS NOT DISTINCT FROM is_now THEN
        RETURN NULL;
    END IF;
    IF was IS NOT NULL THEN
        UPDATE leads.agents SET open_leads = open_leads - 1
        WHERE site_id = OLD.site_id AND agent_id = was;
    END IF;
    IF is_now IS NOT NULL THEN
        INSERT INTO leads.agents AS a (site_id, agent_id, open_leads)
        VALUES (NEW.site_id, is_now, 1)
        ON CONFLICT (site_id, agent_id) DO UPDATE SET open_leads = a.open_leads + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER leads_count_open_leads
    AFTER INSERT OR DELETE OR UPDATE OF status, assignee, merged_into ON leads.leads
    FOR EACH ROW EXECUTE FUNCTION leads.count_open_leads();
