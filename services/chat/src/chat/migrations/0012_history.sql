-- A conversation's history for agents and reports (issue 12): who held it when (a conversation
-- row keeps only its latest holder, so a transfer used to erase the first agent's answer from
-- the reports), the transfers themselves with their private note, and the name of the rule
-- whose invitation opened it.

-- One row per stint of an agent on a conversation, from its assignment to the transfer,
-- requeue or close that ended it. Written with the conversation's row under the site lock.
CREATE TABLE chat.assignments (
    assignment_id    bigserial PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES chat.conversations ON DELETE CASCADE,
    site_id          text NOT NULL,
    agent_id         text REFERENCES chat.agents ON DELETE SET NULL,
    team             text NOT NULL,            -- the conversation's team during the stint
    how              text NOT NULL CHECK (how IN
                         ('auto', 'personal', 'pickup', 'dequeue', 'transfer', 'backfill')),
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz,              -- NULL while the agent holds it
    ended_how        text CHECK (ended_how IN ('transfer', 'requeue', 'closed', 'backfill'))
);
-- at most one agent holds a conversation at a time
CREATE UNIQUE INDEX assignments_current ON chat.assignments (conversation_id)
    WHERE ended_at IS NULL;
CREATE INDEX assignments_conversation ON chat.assignments (conversation_id, started_at);

-- what there was before: each conversation's latest holder, from its assignment to its close
INSERT INTO chat.assignments
    (conversation_id, site_id, agent_id, team, how, started_at, ended_at, ended_how)
SELECT conversation_id, site_id, agent_id, team, 'backfill',
       greatest(assigned_at, created_at),  -- greatest() skips NULLs
       CASE WHEN status = 'open' THEN NULL ELSE greatest(closed_at, assigned_at, created_at) END,
       CASE WHEN status = 'open' THEN NULL ELSE 'backfill' END
FROM chat.conversations
WHERE agent_id IS NOT NULL;

-- Transfers, for the agents' timeline: who moved it, from whom, to whom or which team, and
-- the note for the next agent (agents only: never on chat.events or the widget).
CREATE TABLE chat.transfers (
    transfer_id      uuid PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES chat.conversations ON DELETE CASCADE,
    site_id          text NOT NULL,
    by_agent_id      text REFERENCES chat.agents ON DELETE SET NULL,
    from_agent_id    text REFERENCES chat.agents ON DELETE SET NULL,
    to_agent_id      text REFERENCES chat.agents ON DELETE SET NULL,
    to_team          text NOT NULL,
    target           text NOT NULL CHECK (target IN ('agent', 'team')),
    note             text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfers_conversation ON chat.transfers (conversation_id, created_at);

-- the opening line's attribution in the console ("Invitation · <rule name>")
ALTER TABLE chat.invitations ADD COLUMN rule_name text NOT NULL DEFAULT '';
