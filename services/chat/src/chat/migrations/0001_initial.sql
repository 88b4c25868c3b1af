-- Beckon chat: tenants, agents, teams, conversations, messages, invitations, outbox.
-- Every table carries site_id (directly or through its conversation) so every query can be
-- scoped to the caller's site.

CREATE TABLE chat.sites (
    site_id          text PRIMARY KEY,
    site_key         text NOT NULL UNIQUE,
    name             text NOT NULL DEFAULT '',
    allowed_origins  text[] NOT NULL DEFAULT '{}',
    settings         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat.agents (
    agent_id          text PRIMARY KEY,
    site_id           text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    email             text NOT NULL,
    password_hash     text NOT NULL,
    name              text NOT NULL,
    avatar_url        text,
    role              text NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'admin')),
    max_chats         integer NOT NULL DEFAULT 5 CHECK (max_chats BETWEEN 1 AND 50),
    status            text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'away', 'offline')),
    last_seen_at      timestamptz,
    last_assigned_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX agents_email ON chat.agents (lower(email));
CREATE INDEX agents_site ON chat.agents (site_id);

CREATE TABLE chat.teams (
    site_id  text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    team     text NOT NULL,
    name     text NOT NULL,
    PRIMARY KEY (site_id, team)
);

CREATE TABLE chat.team_members (
    site_id   text NOT NULL,
    team      text NOT NULL,
    agent_id  text NOT NULL REFERENCES chat.agents ON DELETE CASCADE,
    PRIMARY KEY (site_id, team, agent_id),
    FOREIGN KEY (site_id, team) REFERENCES chat.teams ON DELETE CASCADE
);
CREATE INDEX team_members_agent ON chat.team_members (agent_id);

CREATE TABLE chat.visitors (
    site_id     text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    visitor_id  text NOT NULL,
    email       text,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, visitor_id)
);

CREATE TABLE chat.conversations (
    conversation_id  uuid PRIMARY KEY,
    site_id          text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    visitor_id       text NOT NULL,
    team             text NOT NULL,
    agent_id         text REFERENCES chat.agents ON DELETE SET NULL,
    status           text NOT NULL CHECK (status IN ('queued', 'open', 'closed', 'offline')),
    invitation_id    uuid,
    rule_id          text,
    email            text,
    tags             text[] NOT NULL DEFAULT '{}',
    last_seq         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    assigned_at      timestamptz,
    closed_at        timestamptz
);
-- one live conversation per visitor: 50 concurrent "start chat" calls create exactly one
CREATE UNIQUE INDEX conversations_one_live ON chat.conversations (site_id, visitor_id)
    WHERE status IN ('queued', 'open');
CREATE INDEX conversations_queue ON chat.conversations (site_id, team, created_at)
    WHERE status = 'queued';
CREATE INDEX conversations_agent_open ON chat.conversations (agent_id) WHERE status = 'open';
CREATE INDEX conversations_visitor ON chat.conversations (site_id, visitor_id, created_at DESC);

CREATE TABLE chat.messages (
    message_id       uuid PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES chat.conversations ON DELETE CASCADE,
    seq              integer NOT NULL,
    author           text NOT NULL CHECK (author IN ('visitor', 'agent', 'system')),
    agent_id         text,
    text             text NOT NULL,
    client_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq)
);
-- a resent message (same client id) is stored once
CREATE UNIQUE INDEX messages_client_id ON chat.messages (conversation_id, author, client_id)
    WHERE client_id IS NOT NULL;

CREATE TABLE chat.invitations (
    invitation_id  uuid PRIMARY KEY,
    site_id        text NOT NULL,
    visitor_id     text NOT NULL,
    rule_id        text,
    team           text NOT NULL,
    message        text NOT NULL,
    agent          jsonb,
    personal       boolean NOT NULL DEFAULT false,
    status         text NOT NULL DEFAULT 'issued'
                   CHECK (status IN ('issued', 'shown', 'accepted', 'declined')),
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invitations_visitor ON chat.invitations (site_id, visitor_id, expires_at);

CREATE TABLE chat.notes (
    note_id          uuid PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES chat.conversations ON DELETE CASCADE,
    agent_id         text REFERENCES chat.agents ON DELETE SET NULL,
    text             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat.tags (
    site_id  text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    tag      text NOT NULL,
    label    text NOT NULL,
    kind     text NOT NULL DEFAULT 'topic' CHECK (kind IN ('topic', 'objection')),
    PRIMARY KEY (site_id, tag)
);

CREATE TABLE chat.canned_replies (
    reply_id    uuid PRIMARY KEY,
    site_id     text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    team        text,
    agent_id    text REFERENCES chat.agents ON DELETE CASCADE,
    shortcut    text NOT NULL,
    text        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX canned_replies_site ON chat.canned_replies (site_id, shortcut);

-- Transactional outbox: written in the same transaction as the change it describes,
-- published by the relay in id order (one relay at a time holds the outbox lock).
CREATE TABLE chat.outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           bytea NOT NULL,
    value         bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_pending ON chat.outbox (id) WHERE published_at IS NULL;
