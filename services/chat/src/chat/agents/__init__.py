"""Agents: who may use the console and in what state they are.

- `sessions.py`: `Sessions`, the check that a console session has not ended (cached briefly)
- `service.py`: the agents' use cases (login, profile, me, status, preferences, heartbeats,
  the presence sweep)
- `store.py`: `AgentStore`, their rows (accounts, sessions, status), as `tx.store(AgentStore)`
- `domain.py`: e-mail addresses in one normal form, and the login throttle
- `directory.py`: each agent's card on `agents.directory`, relisted when it changes
"""
