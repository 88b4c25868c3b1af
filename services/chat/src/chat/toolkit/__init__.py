"""Console feature: the agent's toolkit (issue 5).

- `domain.py`: pure rules: canned replies (shortcuts, variables, search, who manages which
  set), lead validation, default objection tags and replies, questions and answers
- `store.py`: the SQL
- `api.py`: `/v1/console/canned`, `/conversations/{id}/context|fill|notes|lead`, `/tags`,
  `/answers`, `/transfer-targets`

Private notes reach other consoles as `{"t": "note"}` frames through `rt.bus.push_to_agents`
(never through `chat.events`); the chats view (console.js) shows them inline.
"""

from __future__ import annotations

from chat.features import Stop
from chat.runtime import Runtime
from chat.toolkit.api import router

__all__ = ["router", "start"]


async def start(rt: Runtime) -> Stop | None:
    """Nothing runs in the background: the toolkit is requests and pushes."""
    return None
