"""Beckon leads: captured leads routed to the right team within minutes (see docs/leads.md)."""
