"""Per-site API keys of the REST API: created by an admin (the key shown once, only its hash
kept), listed, revoked; `authenticate` names the site a key belongs to."""
