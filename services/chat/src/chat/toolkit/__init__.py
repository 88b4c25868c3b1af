"""Console feature: the agent's toolkit.

- `domain.py`: pure rules: canned replies (shortcuts, variables, search, who manages which
  set), lead validation, default objection tags and replies, questions and answers
- `store.py`: the SQL
- `api.py`: `/v1/console/canned`, `/conversations/{id}/context|fill|notes|lead`, `/tags`,
  `/answers`, `/transfer-targets`

Private notes reach other consoles as `{"t": "note"}` frames through `rt.bus.push_to_agents`
(never through `chat.events`); the chats view (console.js) shows them inline.
"""

from __future__ import annotations

from chat.features import RequestsOnly
from chat.toolkit.api import router

__all__ = ["ToolkitFeature"]


class ToolkitFeature(RequestsOnly):
    """Requests and pushes only: nothing runs in the background."""

    router = router
