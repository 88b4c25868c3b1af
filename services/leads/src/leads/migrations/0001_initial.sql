-- Beckon leads: leads and their touches, merges, routing rules, SLA policies and timers,
-- agents' presence and caps, CRM webhooks, the outbox, idempotent consumers, dead letters.
-- Every table carries site_id, so every query can be scoped to the caller's site.
-- A lead is open while its status is new, assigned, contacted or qualified (and it is not
-- merged into another); won, lost and recycled are closed.

-- Per-site settings the leads service keeps (the site itself lives in chat's schema).
CREATE TABLE leads.sites (
    site_id               text PRIMARY KEY,
    timezone              text NOT NULL DEFAULT 'UTC',
    -- {"mon": [["09:00", "17:00"]], ...}; empty: around the clock
    business_hours        jsonb NOT NULL DEFAULT '{}',
    holidays              date[] NOT NULL DEFAULT '{}',
    capture_contact_only  boolean NOT NULL DEFAULT true,
    default_team          text,
    default_lead_cap      integer NOT NULL DEFAULT 20 CHECK (default_lead_cap BETWEEN 0 AND 1000),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE leads.teams (
    site_id         text NOT NULL,
    team            text NOT NULL,
    name            text NOT NULL DEFAULT '',
    lead_agent_id   text,  -- the team lead: breaches escalate to them
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, team)
);

CREATE TABLE leads.leads (
    lead_id            uuid PRIMARY KEY,
    site_id            text NOT NULL,
    visitor_id         text NOT NULL,
    status             text NOT NULL DEFAULT 'new'
                       CHECK (status IN ('new', 'assigned', 'contacted', 'qualified',
                                         'won', 'lost', 'recycled')),
    validation         text NOT NULL
                       CHECK (validation IN ('contact_only', 'interested', 'qualified',
                                             'ready_to_buy')),
    team               text,
    assignee           text,  -- agent_id
    -- who the person is: as given, and normalised (e-mail) / E.164 (phone) for dedup
    name               text,
    company            text,
    email              text,
    email_key          text,
    phone              text,
    phone_key          text CHECK (phone_key IS NULL OR phone_key ~ '^\+[1-9][0-9]{6,14}$'),
    country            text,
    language           text,
    -- what brought them, and how they looked at capture (visitors.state)
    source             text NOT NULL DEFAULT 'chat',
    rule_id            text,
    campaign           text,
    score              integer,
    segment            text,
    capture            jsonb NOT NULL DEFAULT '{}',  -- categories viewed, cart value, tags
    -- the outcome
    order_id           text,
    order_value        numeric(14, 2) CHECK (order_value IS NULL OR order_value >= 0),
    currency           text CHECK (currency IS NULL OR currency ~ '^[A-Z]{3}$'),
    lost_reason        text,
    merged_into        uuid REFERENCES leads.leads,
    routing_version    integer,  -- the routing document that picked the team
    -- when
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    queued_at          timestamptz,  -- waiting for a free agent of its team since
    assigned_at        timestamptz,
    first_contact_at   timestamptz,
    closed_at          timestamptz,
    CHECK (status <> 'lost' OR lost_reason IS NOT NULL),
    CHECK (status NOT IN ('won', 'lost', 'recycled') OR closed_at IS NOT NULL),
    CHECK (status NOT IN ('assigned', 'contacted', 'qualified') OR assignee IS NOT NULL),
    CHECK (merged_into IS NULL OR merged_into <> lead_id)
);
-- One open lead per site and person, whichever way the person is known: two concurrent
-- captures of one person collide here, and the loser adds its touch to the winner.
CREATE UNIQUE INDEX leads_one_open_per_email ON leads.leads (site_id, email_key)
    WHERE email_key IS NOT NULL AND merged_into IS NULL
      AND status IN ('new', 'assigned', 'contacted', 'qualified');
CREATE UNIQUE INDEX leads_one_open_per_phone ON leads.leads (site_id, phone_key)
    WHERE phone_key IS NOT NULL AND merged_into IS NULL
      AND status IN ('new', 'assigned', 'contacted', 'qualified');
CREATE UNIQUE INDEX leads_one_open_per_visitor ON leads.leads (site_id, visitor_id)
    WHERE merged_into IS NULL AND status IN ('new', 'assigned', 'contacted', 'qualified');
-- The team's queue, in arrival order (drained as agents come online)
CREATE INDEX leads_queue ON leads.leads (site_id, team, queued_at, lead_id)
    WHERE status = 'new' AND assignee IS NULL AND queued_at IS NOT NULL AND merged_into IS NULL;
-- An agent's open leads (their load against the cap; "my leads")
CREATE INDEX leads_open_by_assignee ON leads.leads (site_id, assignee)
    WHERE assignee IS NOT NULL AND merged_into IS NULL
      AND status IN ('assigned', 'contacted', 'qualified');
-- The inbox and the exports: a site's leads, newest first, by status or team
CREATE INDEX leads_by_site ON leads.leads (site_id, created_at DESC, lead_id);
CREATE INDEX leads_by_status ON leads.leads (site_id, status, created_at DESC);
CREATE INDEX leads_by_team ON leads.leads (site_id, team, created_at DESC);
-- `order.completed` and `identify` by a lead's visitor (closed ones too: an order wins the
-- latest lead)
CREATE INDEX leads_by_visitor ON leads.leads (site_id, visitor_id, created_at DESC);

-- The conversations a lead came from (a person may chat twice before being called).
CREATE TABLE leads.lead_conversations (
    lead_id          uuid NOT NULL REFERENCES leads.leads ON DELETE CASCADE,
    conversation_id  uuid NOT NULL,
    site_id          text NOT NULL,
    added_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, conversation_id)
);
CREATE INDEX lead_conversations_by_conversation
    ON leads.lead_conversations (site_id, conversation_id);

-- Everything that happened to a lead: captures, traits, contact, status changes, orders.
CREATE TABLE leads.touches (
    touch_id         uuid PRIMARY KEY,
    lead_id          uuid NOT NULL REFERENCES leads.leads ON DELETE CASCADE,
    site_id          text NOT NULL,
    kind             text NOT NULL,  -- e.g. lead_marked, email_captured, identify, contacted
    source_event_id  uuid,           -- the consumed event it came from, if any
    conversation_id  uuid,
    agent_id         text,
    validation       text,
    details          jsonb NOT NULL DEFAULT '{}',
    occurred_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX touches_by_lead ON leads.touches (lead_id, occurred_at, touch_id);
-- A redelivered event adds no second touch
CREATE UNIQUE INDEX touches_once_per_event ON leads.touches (lead_id, source_event_id)
    WHERE source_event_id IS NOT NULL;

-- Merges, reversible by an admin: what moved, and the merged lead as it was.
CREATE TABLE leads.merges (
    merge_id       uuid PRIMARY KEY,
    site_id        text NOT NULL,
    survivor_id    uuid NOT NULL REFERENCES leads.leads,
    merged_id      uuid NOT NULL REFERENCES leads.leads,
    reason         text NOT NULL CHECK (reason IN ('email', 'phone', 'visitor', 'admin')),
    moved_touches  uuid[] NOT NULL DEFAULT '{}',
    moved_conversations uuid[] NOT NULL DEFAULT '{}',
    snapshot       jsonb NOT NULL,  -- the merged lead's row before the merge
    merged_by      text,            -- an agent, or NULL for the service's dedup
    merged_at      timestamptz NOT NULL DEFAULT now(),
    undone_by      text,
    undone_at      timestamptz,
    CHECK (survivor_id <> merged_id)
);
CREATE UNIQUE INDEX merges_one_live_per_lead ON leads.merges (merged_id) WHERE undone_at IS NULL;
CREATE INDEX merges_by_survivor ON leads.merges (survivor_id, merged_at);

-- Routing rules: one versioned document per site (the latest version is in force).
CREATE TABLE leads.routing_rules (
    site_id     text NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    document    jsonb NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, version)
);

-- First-contact deadlines per team and validation level (defaults apply where none is set).
CREATE TABLE leads.sla_policies (
    site_id             text NOT NULL,
    team                text NOT NULL,
    validation          text NOT NULL
                        CHECK (validation IN ('contact_only', 'interested', 'qualified',
                                              'ready_to_buy')),
    first_contact_s     integer NOT NULL CHECK (first_contact_s > 0),
    warn_at_percent     smallint[] NOT NULL DEFAULT '{50,80}',
    reassign_on_breach  boolean NOT NULL DEFAULT false,
    business_hours_only boolean NOT NULL DEFAULT true,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, team, validation)
);

-- Durable SLA timers: due rows are claimed with FOR UPDATE SKIP LOCKED by any instance,
-- fired once (fired_at), and cancelled the moment the lead is contacted or closed.
CREATE TABLE leads.timers (
    timer_id      bigserial PRIMARY KEY,
    lead_id       uuid NOT NULL REFERENCES leads.leads ON DELETE CASCADE,
    site_id       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('warning', 'breach')),
    at_percent    smallint NOT NULL CHECK (at_percent BETWEEN 1 AND 100),
    assignee      text,  -- who was to contact the lead when the timer was set
    deadline_at   timestamptz NOT NULL,  -- the first-contact deadline it belongs to
    due_at        timestamptz NOT NULL,
    claimed_at    timestamptz,
    claimed_by    text,  -- the instance
    fired_at      timestamptz,
    cancelled_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (fired_at IS NULL OR cancelled_at IS NULL),
    CHECK ((kind = 'breach') = (at_percent = 100))
);
CREATE INDEX timers_due ON leads.timers (due_at, timer_id)
    WHERE fired_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX timers_by_lead ON leads.timers (lead_id) WHERE fired_at IS NULL AND cancelled_at IS NULL;
CREATE UNIQUE INDEX timers_once ON leads.timers (lead_id, deadline_at, at_percent);

-- Agents as the leads service knows them: presence from `agents.presence` (one row per team
-- they are in), and the per-agent open-lead cap and deactivation from the admin.
CREATE TABLE leads.presence (
    site_id     text NOT NULL,
    team        text NOT NULL,
    agent_id    text NOT NULL,
    name        text NOT NULL DEFAULT '',
    status      text NOT NULL CHECK (status IN ('online', 'away', 'offline')),
    as_of       timestamptz NOT NULL,  -- the presence record's time: older ones are ignored
    PRIMARY KEY (site_id, team, agent_id)
);
CREATE INDEX presence_online ON leads.presence (site_id, team) WHERE status = 'online';

CREATE TABLE leads.agents (
    site_id         text NOT NULL,
    agent_id        text NOT NULL,
    max_open_leads  integer CHECK (max_open_leads IS NULL OR max_open_leads BETWEEN 0 AND 1000),
    deactivated_at  timestamptz,
    last_assigned_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, agent_id)
);

-- CRM webhooks: endpoints per site, and a durable queue of deliveries with their attempts.
CREATE TABLE leads.webhook_endpoints (
    endpoint_id       uuid PRIMARY KEY,
    site_id           text NOT NULL,
    url               text NOT NULL,
    description       text NOT NULL DEFAULT '',
    event_types       text[] NOT NULL,
    secret            text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    previous_secret   text CHECK (previous_secret IS NULL OR previous_secret LIKE 'whsec\_%'),
    previous_until    timestamptz,  -- both secrets sign until then (rotation)
    enabled           boolean NOT NULL DEFAULT true,
    disabled_reason   text,
    failing_since     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (enabled OR disabled_reason IS NOT NULL),
    CHECK ((previous_secret IS NULL) = (previous_until IS NULL))
);
CREATE INDEX webhook_endpoints_by_site ON leads.webhook_endpoints (site_id) WHERE enabled;

CREATE TABLE leads.webhook_deliveries (
    delivery_id      bigserial PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES leads.webhook_endpoints ON DELETE CASCADE,
    site_id          text NOT NULL,
    message_id       text NOT NULL,  -- webhook-id: the same on every retry and replay
    event_type       text NOT NULL,
    body             bytea NOT NULL,  -- exactly the bytes signed and sent
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by       text,
    claimed_until    timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON leads.webhook_deliveries (next_attempt_at, delivery_id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON leads.webhook_deliveries (endpoint_id, created_at DESC);

CREATE TABLE leads.webhook_attempts (
    delivery_id   bigint NOT NULL REFERENCES leads.webhook_deliveries ON DELETE CASCADE,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    started_at    timestamptz NOT NULL,
    duration_ms   integer NOT NULL CHECK (duration_ms >= 0),
    status        integer,  -- the receiver's HTTP status; NULL: no answer (see error)
    error         text,
    PRIMARY KEY (delivery_id, attempt)
);

-- Per-site API keys of the REST API and the CSV export (only a hash is kept).
CREATE TABLE leads.api_keys (
    key_id       uuid PRIMARY KEY,
    site_id      text NOT NULL,
    name         text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_by_site ON leads.api_keys (site_id);

-- Transactional outbox: written in the same transaction as the change it describes,
-- published by the relay in id order (one relay at a time holds the outbox lock).
CREATE TABLE leads.outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           bytea NOT NULL,
    value         bytea NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_pending ON leads.outbox (id) WHERE published_at IS NULL;

-- Idempotent consumers: an event id is handled once per consumer, in the transaction of
-- its effects.
CREATE TABLE leads.processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_age ON leads.processed_events (processed_at);

-- What was sent to a dead-letter topic, and why (for the admin's view and replays).
CREATE TABLE leads.dead_letters (
    id            bigserial PRIMARY KEY,
    site_id       text,  -- when the record named one
    source_topic  text NOT NULL,
    partition     integer,
    "offset"      bigint,
    reason        text NOT NULL,
    detail        text NOT NULL,
    value         bytea NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_recent ON leads.dead_letters (recorded_at DESC);
