-- Each lead counts its own events on leads.events (the payloads' `seq`: 1, 2, 3...), so a
-- receiver that gets them out of order keeps the latest; and an SLA timer has the UUID the
-- contract's `timer_id` names (the bigserial stays the claim order).
ALTER TABLE leads.leads ADD COLUMN event_seq integer NOT NULL DEFAULT 0 CHECK (event_seq >= 0);
ALTER TABLE leads.timers ADD COLUMN timer_uuid uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX timers_by_uuid ON leads.timers (timer_uuid);
