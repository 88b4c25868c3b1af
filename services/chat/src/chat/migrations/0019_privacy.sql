-- A visitor's data erased on request (chat.privacy), and retention per site.

-- One row per erasure request: who asked and when, and what chat erased. It names no
-- visitor (the subjects travel on privacy.requests, e-mails only as hashes).
CREATE TABLE chat.privacy_requests (
    request_id    uuid PRIMARY KEY,
    site_id       text NOT NULL REFERENCES chat.sites ON DELETE CASCADE,
    requested_by  text NOT NULL,
    subjects      integer NOT NULL,             -- visitor ids and addresses asked for
    requested_at  timestamptz NOT NULL DEFAULT now(),
    erased_at     timestamptz,                  -- chat's own part done
    counts        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX privacy_requests_site ON chat.privacy_requests (site_id, requested_at DESC);

-- How long a site keeps visitors' activity and chat transcripts (days; NULL: as long as the
-- conversation exists, as before)
CREATE TABLE chat.retention (
    site_id          text PRIMARY KEY REFERENCES chat.sites ON DELETE CASCADE,
    activity_days    integer CHECK (activity_days BETWEEN 1 AND 3650),
    transcript_days  integer CHECK (transcript_days BETWEEN 1 AND 3650),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- transcripts pruned by age: conversations closed before a cut-off
CREATE INDEX conversations_closed ON chat.conversations (site_id, closed_at)
    WHERE closed_at IS NOT NULL;

-- beckon_contracts.privacy.subject_hash in SQL: how an address or a visitor id travels and is
-- kept once erased
CREATE FUNCTION chat.subject_hash(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(lower(btrim(value)), 'UTF8')), 'hex') $$;

-- what an erased visitor id becomes where a row is kept for the reports' counts
CREATE FUNCTION chat.pseudonym(visitor_id text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT 'erased:' || left(chat.subject_hash(visitor_id), 32) $$;
