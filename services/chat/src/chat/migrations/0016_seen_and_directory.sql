-- Facts for the notifier (issue 16).

-- The highest seq the visitor's widget has shown (panel open, page visible): it only grows,
-- and each growth is published as `conversation.seen`, so the notifier e-mails the visitor
-- only the agents' messages they have not seen.
ALTER TABLE chat.conversations ADD COLUMN seen_seq integer NOT NULL DEFAULT 0;

-- The agent as last listed on `agents.directory` (e-mail, name, language, role, teams,
-- active) and that card's version: a change of the card raises the version by one, and the
-- record goes out through the outbox in the same transaction (chat.agents.directory).
ALTER TABLE chat.agents
    ADD COLUMN directory_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN directory_card jsonb;
