-- A visitor's data erased on request (notifier.privacy): the SQL twin of
-- beckon_contracts.privacy.subject_hash, how an e-mail address travels in an erasure request.
-- (Suppressions already keep only a hash of the address.)
CREATE FUNCTION notifier.subject_hash(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(lower(btrim(value)), 'UTF8')), 'hex') $$;
