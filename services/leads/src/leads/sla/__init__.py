"""Speed-to-lead SLA timers (see service.py)."""
