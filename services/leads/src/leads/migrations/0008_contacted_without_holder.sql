-- A contacted or qualified lead may lose its holder (unassigned back to its team's queue when
-- the agent is deactivated or hands it back with nobody free) and keeps its status meanwhile
-- (domain/lifecycle.py): only `assigned` needs an assignee. 0001's check (Postgres named it
-- leads_check2: the third unnamed table check of leads.leads) asked it of all three.
ALTER TABLE leads.leads DROP CONSTRAINT leads_check2;
ALTER TABLE leads.leads ADD CONSTRAINT leads_assigned_has_an_assignee
    CHECK (status <> 'assigned' OR assignee IS NOT NULL);
