"""Routing a lead to its team and giving it to an agent (see service.py)."""
