-- CRM webhooks: the retry schedule counts the attempts of the current round (since the
-- delivery was queued or last replayed), while `attempts` keeps counting for the log, so a
-- replayed delivery that fails again is retried on the schedule from its first step.
ALTER TABLE leads.webhook_deliveries
    ADD COLUMN round_attempts integer NOT NULL DEFAULT 0 CHECK (round_attempts >= 0);
