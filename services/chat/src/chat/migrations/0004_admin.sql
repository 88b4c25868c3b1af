-- The console's admin pages (issue 5): rule versions published from the console (an audit
-- trail; `rules.config` stays the truth the workers run), agents that can be deactivated,
-- and single-use invitations to set a password.

CREATE TABLE chat.rule_versions (
    site_id            text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    version            integer NOT NULL CHECK (version >= 1),
    rules              jsonb NOT NULL,             -- the SiteRules document as published
    published_by       text REFERENCES chat.agents ON DELETE SET NULL,
    published_by_name  text NOT NULL DEFAULT '',   -- kept when the agent is gone
    published_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, version)
);

ALTER TABLE chat.agents ADD COLUMN deactivated_at timestamptz;

-- Only a SHA-256 of each token is stored (the token is 256 random bits, shown once).
CREATE TABLE chat.agent_invites (
    token_hash  bytea PRIMARY KEY,
    site_id     text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    agent_id    text NOT NULL REFERENCES chat.agents ON DELETE CASCADE,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX agent_invites_agent ON chat.agent_invites (agent_id);
