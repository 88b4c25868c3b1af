-- Capture and dedup (services/leads/src/leads/capture): what capture remembers of a
-- conversation before it becomes a lead, whose word each of a lead's traits is, and the
-- indexes that find a person through leads merged into another.

-- What brought a conversation about (conversation.started) and how agents tagged it
-- (conversation.tagged): a lead captured from it records the rule and the segment tags.
CREATE TABLE leads.conversations (
    site_id          text NOT NULL,
    conversation_id  uuid NOT NULL,
    visitor_id       text NOT NULL,
    team             text,
    rule_id          text,
    invitation_id    uuid,
    tags             text[] NOT NULL DEFAULT '{}',
    started_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, conversation_id)
);
CREATE INDEX conversations_age ON leads.conversations (updated_at);

-- Who gave each trait of a lead and when: {"name": {"source": "visitor", "at": "..."}}; the
-- values themselves are the columns (name, company, email, phone). An agent's value is never
-- overwritten by a visitor's (domain/identity.py).
ALTER TABLE leads.leads ADD COLUMN traits jsonb NOT NULL DEFAULT '{}';

-- A merged lead keeps its e-mail, phone and visitor: a later capture that names one of them
-- finds it and follows `merged_into` to the open survivor. The 0001 indexes only cover open,
-- unmerged leads; these cover every lead.
CREATE INDEX leads_by_email_key ON leads.leads (site_id, email_key) WHERE email_key IS NOT NULL;
CREATE INDEX leads_by_phone_key ON leads.leads (site_id, phone_key) WHERE phone_key IS NOT NULL;
CREATE INDEX leads_merged_into ON leads.leads (merged_into) WHERE merged_into IS NOT NULL;

-- The visitor (browser) each touch came from: a person chats from their phone and their
-- laptop, and an `identify` or an order from either is theirs.
ALTER TABLE leads.touches ADD COLUMN visitor_id text;
CREATE INDEX touches_by_visitor ON leads.touches (site_id, visitor_id) WHERE visitor_id IS NOT NULL;
