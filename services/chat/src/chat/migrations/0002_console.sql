-- The agent console (issue 5): per-agent preferences, and the visitors' recorded activity that
-- the visitor card and the reports read. Feature-specific tables come in later migrations.

ALTER TABLE chat.agents
    ADD COLUMN locale    text  NOT NULL DEFAULT 'en',
    ADD COLUMN settings  jsonb NOT NULL DEFAULT '{}';  -- notifications, sound, …

-- What each visitor did, from `tracking.events` (consumer group "chat-activity"), for the
-- visitor card's history and the reports' orders. Idempotent on event_id; old rows expire.
CREATE TABLE chat.activity (
    event_id     uuid PRIMARY KEY,
    site_id      text NOT NULL,
    visitor_id   text NOT NULL,
    session_id   text,
    type         text NOT NULL,           -- page.viewed, product.viewed, cart.updated, order.completed, …
    occurred_at  timestamptz NOT NULL,
    url          text,
    title        text,
    value        numeric(14, 2),          -- cart value or order value, when the event has one
    currency     text,
    detail       jsonb NOT NULL DEFAULT '{}'  -- the event's payload, trimmed
);
CREATE INDEX activity_visitor ON chat.activity (site_id, visitor_id, occurred_at DESC);
CREATE INDEX activity_orders ON chat.activity (site_id, occurred_at) WHERE type = 'order.completed';
