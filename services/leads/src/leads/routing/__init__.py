"""A site's routing rules and teams: the store, the admin's use cases and routes."""
