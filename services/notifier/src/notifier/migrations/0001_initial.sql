-- The notifier's schema: what it knows of conversations (from chat.events), each e-mail's
-- intent and result, the delivery log, suppressions, inbound replies, the outbox,
-- idempotent consumers and dead letters. Every table carries site_id.

-- A site's e-mail settings (admins change them from the console; absent: the defaults).
CREATE TABLE notifier.sites (
    site_id         text PRIMARY KEY,
    from_name       text,            -- null: the site id
    from_address    text,            -- null: NOTIFIER_FROM_ADDRESS
    reply_domain    text,            -- null: NOTIFIER_REPLY_DOMAIN
    -- {"sales": ["sales@shop.example"], "*": ["hello@shop.example"]}: the team inboxes
    team_inboxes    jsonb NOT NULL DEFAULT '{}',
    unread_after_s  integer CHECK (unread_after_s BETWEEN 0 AND 86400),  -- null: the default
    transcripts     boolean NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The conversations chat told about: where visitor mail may go (an address captured in that
-- conversation, never another), its language and how far the visitor saw it.
CREATE TABLE notifier.conversations (
    conversation_id  uuid PRIMARY KEY,
    site_id          text NOT NULL,
    visitor_id       text NOT NULL,
    team             text,
    email            text,           -- the visitor's address captured in this conversation
    visitor_name     text,
    language         text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'fi')),
    offline          boolean NOT NULL DEFAULT false,  -- began as an offline message
    offline_text     text,                            -- what the visitor left then
    seen_seq         integer NOT NULL DEFAULT 0,      -- the visitor saw messages up to this
    emailed_seq      integer NOT NULL DEFAULT 0,      -- agents' messages e-mailed up to this
    closed_at        timestamptz,
    started_at       timestamptz NOT NULL DEFAULT now(),
    first_email_id   text,                            -- the thread's first Message-ID
    last_email_id    text                             -- the latest e-mail's Message-ID
);
CREATE INDEX conversations_site ON notifier.conversations (site_id, started_at DESC);

-- Its messages, for transcripts and unread-message e-mails (agents' notes never reach
-- chat.events, so never here).
CREATE TABLE notifier.messages (
    conversation_id   uuid NOT NULL REFERENCES notifier.conversations ON DELETE CASCADE,
    seq               integer NOT NULL,
    author            text NOT NULL CHECK (author IN ('visitor', 'agent', 'system')),
    author_name       text,
    agent_avatar_url  text,
    text              text NOT NULL,
    channel           text NOT NULL DEFAULT 'chat',
    sent_at           timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- One row per e-mail intent: the idempotency key (template, recipient, source event) is
-- unique, so a replay or a second instance never makes a second one; the Message-ID is
-- derived from it, so a resend after a crash repeats the same id.
CREATE TABLE notifier.emails (
    email_id         uuid PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    site_id          text NOT NULL,
    template         text NOT NULL,
    recipient        text NOT NULL,
    recipient_kind   text NOT NULL CHECK (recipient_kind IN ('visitor', 'staff', 'inbox')),
    language         text NOT NULL CHECK (language IN ('en', 'fi')),
    conversation_id  uuid,
    visitor_id       text,
    source_event_id  uuid NOT NULL,
    context          jsonb NOT NULL,  -- what the template renders (scheduled: filled when due)
    message_id       text NOT NULL,
    -- scheduled: waits for its moment (unread messages); pending: to send; sending: claimed;
    -- sent; failed (permanent, or out of tries); suppressed (bounced, complained,
    -- unsubscribed, over a limit); cancelled (nothing left to say: the visitor saw it)
    status           text NOT NULL CHECK (status IN
                         ('scheduled', 'pending', 'sending', 'sent', 'failed', 'suppressed',
                          'cancelled')),
    reason           text,
    attempts         integer NOT NULL DEFAULT 0,
    due_at           timestamptz NOT NULL DEFAULT now(),
    claimed_by       text,
    claimed_until    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    subject          text          -- as rendered at the last try (for the delivery log)
);
CREATE INDEX emails_due ON notifier.emails (due_at) WHERE status IN ('scheduled', 'pending');
CREATE INDEX emails_claimed ON notifier.emails (claimed_until) WHERE status = 'sending';
CREATE INDEX emails_site ON notifier.emails (site_id, created_at DESC);
CREATE INDEX emails_recipient ON notifier.emails (lower(recipient), created_at DESC);
-- not partial: a generic plan (asyncpg keeps statements prepared) cannot prove a predicate
CREATE INDEX emails_visitor ON notifier.emails (visitor_id, site_id, created_at DESC);
-- one unread-messages e-mail waiting per conversation at a time
CREATE UNIQUE INDEX emails_one_unread ON notifier.emails (conversation_id)
    WHERE template = 'unread_messages' AND status = 'scheduled';

-- E-mails intended per site and clock hour, for the site's hourly limit: spread over a few
-- rows per hour (the shard: a hash of the recipient), so concurrent intents rarely wait for
-- one another's row, and read as their sum.
CREATE TABLE notifier.site_hours (
    site_id  text NOT NULL,
    hour     timestamptz NOT NULL,
    shard    smallint NOT NULL,
    emails   integer NOT NULL,
    PRIMARY KEY (site_id, hour, shard)
);

-- The delivery log: each try of each e-mail.
CREATE TABLE notifier.attempts (
    email_id    uuid NOT NULL REFERENCES notifier.emails ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    smtp_code   integer,
    detail      text,
    instance    text,
    PRIMARY KEY (email_id, attempt)
);

-- Addresses that get nothing more from a site: kept as a hash (sha-256 of the lower-cased
-- address), so a suppression outlives the erasure of the address itself.
CREATE TABLE notifier.suppressions (
    site_id       text NOT NULL,
    address_hash  bytea NOT NULL,
    reason        text NOT NULL CHECK (reason IN ('bounce', 'complaint', 'unsubscribe')),
    detail        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, address_hash)
);

-- Mail that came in: replies handed to chat, refusals, bounces and complaints.
CREATE TABLE notifier.inbound (
    inbound_id       uuid PRIMARY KEY,
    site_id          text,
    conversation_id  uuid,
    from_email       text,
    mail_message_id  text,
    outcome          text NOT NULL CHECK (outcome IN
                         ('accepted', 'duplicate', 'refused', 'ignored', 'bounce', 'complaint')),
    reason           text,
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX inbound_once ON notifier.inbound (conversation_id, mail_message_id)
    WHERE outcome = 'accepted';
CREATE INDEX inbound_recent ON notifier.inbound (received_at DESC);

-- Transactional outbox (chat.inbound commands, dead letters), as in chat and leads.
CREATE TABLE notifier.outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           bytea NOT NULL,
    value         bytea NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_pending ON notifier.outbox (id) WHERE published_at IS NULL;

CREATE TABLE notifier.processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_age ON notifier.processed_events (processed_at);

CREATE TABLE notifier.dead_letters (
    id            bigserial PRIMARY KEY,
    site_id       text,
    source_topic  text NOT NULL,
    partition     integer,
    "offset"      bigint,
    reason        text NOT NULL,
    detail        text NOT NULL,
    value         bytea NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_recent ON notifier.dead_letters (recorded_at DESC);
