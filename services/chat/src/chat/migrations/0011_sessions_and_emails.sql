-- Agents' sessions can be ended, and their e-mail addresses have one normal form (issue 12).

-- The signed session cookie carries the version it was issued at; logging out, a new
-- password, deactivation and reactivation raise it, so every older cookie stops working.
ALTER TABLE chat.agents ADD COLUMN session_version integer NOT NULL DEFAULT 1;

-- Addresses are stored NFKC + case-folded (chat.domain.login.normalise_email; the Python
-- step of this version in chat.adapters.migrations rewrote the existing ones) and compared
-- as stored. Postgres' lower() folded differently from the service, so it no longer decides.
-- Unique across sites: an agent logs in with an address alone (docs/chat.md, "Agents").
DROP INDEX chat.agents_email;
CREATE UNIQUE INDEX agents_email ON chat.agents (email);
