-- The agent's toolkit (issue 5): notes by conversation, canned replies found by shortcut,
-- answers found by tag, conversations marked as leads, and which defaults a site has been
-- given (so an admin who deletes a default does not see it come back).

CREATE INDEX notes_conversation ON chat.notes (conversation_id, created_at);

-- a shortcut means one reply within its set: an agent's own, a team's, or the site's
CREATE UNIQUE INDEX canned_replies_shortcut ON chat.canned_replies
    (site_id, coalesce(team, ''), coalesce(agent_id, ''), shortcut);
ALTER TABLE chat.canned_replies ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- the Answers view: tagged conversations of a site, newest first
CREATE INDEX conversations_tagged ON chat.conversations USING gin (tags)
    WHERE cardinality(tags) > 0;

-- One mark per conversation (a second click updates it); the visitor card reads it by name.
CREATE TABLE chat.lead_marks (
    mark_id          uuid PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES chat.conversations ON DELETE CASCADE,
    site_id          text NOT NULL,
    visitor_id       text NOT NULL,
    agent_id         text REFERENCES chat.agents ON DELETE SET NULL,
    validation       text NOT NULL
                     CHECK (validation IN ('contact_only', 'interested', 'qualified', 'ready_to_buy')),
    note             text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, conversation_id)
);
CREATE INDEX lead_marks_visitor ON chat.lead_marks (site_id, visitor_id, created_at DESC);

CREATE TABLE chat.toolkit_defaults (
    site_id     text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    what        text NOT NULL,             -- 'objection_tags', 'canned_replies'
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, what)
);
