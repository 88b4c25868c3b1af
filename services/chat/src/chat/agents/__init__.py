"""Agents: who may use the console and in what state they are.

- `sessions.py`: `Sessions`, the check that a console session has not ended (cached briefly)
- `service.py`: the agents' use cases (profile, login, status, preferences, heartbeats)
"""
