-- API keys as the admin lists them: a hint of the key (its first characters, enough to tell
-- two apart; the key itself is shown once and only its hash is kept), and who created and
-- revoked it.
ALTER TABLE leads.api_keys
    ADD COLUMN hint        text NOT NULL DEFAULT '',
    ADD COLUMN created_by  text,
    ADD COLUMN revoked_by  text;
ALTER TABLE leads.api_keys ADD CONSTRAINT api_keys_name_length CHECK (length(name) BETWEEN 1 AND 100);
