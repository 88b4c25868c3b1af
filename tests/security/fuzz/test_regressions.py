"""What the fuzzing found, pinned down without I/O."""

from __future__ import annotations

import pytest
from chat.conversations.model import MAX_SEQ, messages_after


@pytest.mark.parametrize(
    ("after", "used"),
    [(-5, 0), (0, 0), (7, 7), (MAX_SEQ, MAX_SEQ), (MAX_SEQ + 1, MAX_SEQ), (10**20, MAX_SEQ)],
)
def test_messages_are_listed_after_a_seq_the_database_can_compare(after, used):
    assert messages_after(after) == used
