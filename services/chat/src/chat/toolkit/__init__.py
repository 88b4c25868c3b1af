"""Console feature: the agent's toolkit.

- `domain.py`: pure rules: canned replies (shortcuts, variables, search, who manages which
  set), lead validation, default objection tags and replies, questions and answers
- `service.py`: the use cases (canned replies and their defaults, context and fill, notes,
  tags, answers, transfer targets, lead marks), each in a unit of work
- `store.py`: the SQL (`ToolkitStore`, on a unit of work's connection)
- `api.py`: `/v1/console/canned`, `/conversations/{id}/context|fill|notes|lead`, `/tags`,
  `/answers`, `/transfer-targets`: thin routes, one use case each

Private notes reach other consoles as `{"t": "note"}` frames through `rt.bus.push_to_agents`
once stored (never through `chat.events`); the chats view shows them inline.
"""

from __future__ import annotations

from chat.features import RequestsOnly
from chat.toolkit.api import router

__all__ = ["ToolkitFeature"]


class ToolkitFeature(RequestsOnly):
    """Requests and pushes only: nothing runs in the background."""

    router = router
