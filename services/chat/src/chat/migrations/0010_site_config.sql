-- Sites have one owner (this schema) and one path to the tracker and triggers (`sites.config`):
-- the Segment write key lives here now, and every change bumps the site's config version,
-- which followers compare to keep the newest record.
ALTER TABLE chat.sites
    ADD COLUMN write_key text UNIQUE,
    ADD COLUMN config_version bigint NOT NULL DEFAULT 1;
