"""Conversations, the core of the domain: a visitor's chat from its start through queue,
assignment, messages and transfer to its close.

- `assignment.py`: who gets a conversation (inside a unit of work holding the site lock)
"""
