-- Speed-to-lead SLAs as the service runs them (leads/sla/). A stored policy says all that
-- `domain/sla.SlaPolicy` does: no SLA at all for a level (first_contact_s NULL), whether a breach
-- escalates, and how many breach reassignments one lead gets at most.
ALTER TABLE leads.sla_policies ALTER COLUMN first_contact_s DROP NOT NULL;
ALTER TABLE leads.sla_policies ADD COLUMN escalate boolean NOT NULL DEFAULT true;
ALTER TABLE leads.sla_policies ADD COLUMN max_reassignments smallint NOT NULL DEFAULT 1
    CHECK (max_reassignments BETWEEN 0 AND 10);
ALTER TABLE leads.sla_policies ADD CONSTRAINT sla_policies_warn_at_percent
    CHECK (1 <= ALL (warn_at_percent) AND 99 >= ALL (warn_at_percent));
-- What became of a timer: why it was cancelled (stopped, stale, the lead closed), whether its
-- breach handed the lead on (counted against max_reassignments), and a firing that failed
-- (it is retried later; the error is kept for the operator).
ALTER TABLE leads.timers ADD COLUMN cancel_reason text;
ALTER TABLE leads.timers ADD COLUMN reassigned boolean NOT NULL DEFAULT false;
ALTER TABLE leads.timers ADD COLUMN failures smallint NOT NULL DEFAULT 0 CHECK (failures >= 0);
ALTER TABLE leads.timers ADD COLUMN last_error text;
CREATE INDEX timers_reassigned ON leads.timers (lead_id) WHERE reassigned;
