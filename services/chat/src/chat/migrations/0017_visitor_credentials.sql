-- Issue 19: a visitor's conversations belong to the browser the widget runs in, not to
-- whoever knows the visitor id; identity verification per site.

-- The browser credential the widget session hands out (shown once, kept here as a SHA-256),
-- bound to one site and one visitor id; `user_id` is the verified identity last seen with it.
CREATE TABLE chat.visitor_credentials (
    credential_id  uuid PRIMARY KEY,
    site_id        text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    visitor_id     text NOT NULL,
    secret_hash    bytea NOT NULL UNIQUE,
    user_id        text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visitor_credentials_visitor ON chat.visitor_credentials (site_id, visitor_id);

-- Conversations from before this migration have no credential: no browser reaches them
-- (agents still do). `user_id`: the verified identity the conversation was started with,
-- which lets that user reach it from another device.
ALTER TABLE chat.conversations
    ADD COLUMN credential_id uuid,
    ADD COLUMN user_id text;
DROP INDEX chat.conversations_one_live;
CREATE UNIQUE INDEX conversations_one_live
    ON chat.conversations (site_id, visitor_id, credential_id)
    WHERE status IN ('queued', 'open');
CREATE INDEX conversations_user ON chat.conversations (site_id, user_id, created_at DESC)
    WHERE user_id IS NOT NULL;

-- Identity secrets (newest first, at most two: the current one and the one being rotated
-- out) and whether identified traits need a valid hash. Sites that exist keep working as
-- they did (false: they never had a secret); a site created from now on enforces it.
ALTER TABLE chat.sites
    ADD COLUMN identity_secrets jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN identity_verification boolean NOT NULL DEFAULT false;
ALTER TABLE chat.sites ALTER COLUMN identity_verification SET DEFAULT true;
