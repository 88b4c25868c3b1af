"""A conversation's status rules (chat.conversations.model), without I/O."""

from __future__ import annotations

import pytest
from chat.conversations.model import Conversation, is_live
from chat.errors import Conflict, Forbidden


def _refused(kind: type[Exception], code: str, check, *args, **kwargs) -> None:
    with pytest.raises(kind) as refused:
        check(*args, **kwargs)
    assert refused.value.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "live"), [("queued", True), ("open", True), ("closed", False), ("offline", False)]
)
def test_live_means_queued_or_open(status: str, live: bool) -> None:
    assert is_live(status) is live
    assert Conversation(status=status).live is live


def test_built_from_a_row_or_from_a_view_without_an_agent_id() -> None:
    row = {"status": "open", "team": "sales", "agent_id": "anna", "last_seq": 4}
    assert Conversation.of(row) == Conversation("open", "sales", "anna")
    view = {"id": "c1", "status": "queued", "team": "sales", "agent": None}
    assert Conversation.of(view) == Conversation("queued", "sales", None)
    assert Conversation.of(view).queued
    assert not Conversation.of(view).open
    assert Conversation("closed").closed


def test_only_the_holder_may_reply() -> None:
    held = Conversation("open", "sales", "anna")
    held.check_reply("anna")
    _refused(Conflict, "not_your_conversation", held.check_reply, "ben")
    _refused(Conflict, "not_your_conversation", Conversation("queued", "sales").check_reply, "anna")
    # a closed conversation keeps its last agent, who may not reply any more
    closed = Conversation("closed", "sales", "anna")
    _refused(Conflict, "not_your_conversation", closed.check_reply, "anna")


def test_any_agent_answers_an_offline_message() -> None:
    """Nobody holds an offline message; the answer goes to the visitor by e-mail."""
    offline = Conversation("offline", "sales")
    offline.check_reply("anna")
    offline.check_reply("ben")
    assert not offline.live


def test_pickup_needs_a_queued_conversation_of_the_agents_team_and_room() -> None:
    queued = Conversation("queued", "sales")
    queued.check_pickup(teams=["sales"], open_chats=2, max_chats=3)
    _refused(
        Conflict,
        "not_queued",
        Conversation("open", "sales", "ben").check_pickup,
        teams=["sales"],
        open_chats=0,
        max_chats=3,
    )
    _refused(
        Conflict, "not_in_team", queued.check_pickup, teams=["support"], open_chats=0, max_chats=3
    )
    _refused(Conflict, "at_limit", queued.check_pickup, teams=["sales"], open_chats=3, max_chats=3)


def test_transfer_by_the_holder_or_an_admin_of_a_live_conversation() -> None:
    held = Conversation("open", "sales", "anna")
    held.check_transfer("anna", admin=False)
    held.check_transfer("cecilia", admin=True)
    _refused(Forbidden, "transfer_not_allowed", held.check_transfer, "ben", admin=False)
    Conversation("queued", "sales").check_transfer("ben", admin=False)  # nobody's yet
    _refused(
        Conflict,
        "conversation_closed",
        Conversation("closed", "sales", "anna").check_transfer,
        "anna",
        admin=True,
    )


def test_close_by_its_agent_or_any_agent_while_queued() -> None:
    Conversation("open", "sales", "anna").check_close("anna")
    Conversation("queued", "sales").check_close("ben")
    _refused(
        Conflict, "not_your_conversation", Conversation("open", "sales", "anna").check_close, "ben"
    )
    _refused(Conflict, "conversation_closed", Conversation("closed", "sales").check_close, "anna")
    _refused(Conflict, "conversation_closed", Conversation("offline", "sales").check_live)


# --- what the visitor has seen (conversation.seen) ------------------------------------------


def test_seen_grows_only_past_what_was_seen() -> None:
    from chat.conversations.model import seen_grows

    assert seen_grows(seq=3, last_seq=5, seen_seq=2)
    assert seen_grows(seq=5, last_seq=5, seen_seq=0)
    assert not seen_grows(seq=2, last_seq=5, seen_seq=2)  # a widget repeating itself
    assert not seen_grows(seq=1, last_seq=5, seen_seq=4)  # an older tab behind another


def test_seen_past_the_last_message_or_below_one_is_refused() -> None:
    from chat.conversations.model import seen_grows
    from chat.errors import Invalid

    with pytest.raises(Invalid) as beyond:
        seen_grows(seq=6, last_seq=5, seen_seq=0)
    assert (beyond.value.code, beyond.value.detail) == (
        "seq_beyond_last",
        "seq 6 is past the conversation's last message (seq 5)",
    )
    with pytest.raises(Invalid) as zero:
        seen_grows(seq=0, last_seq=5, seen_seq=0)
    assert zero.value.code == "invalid_seq"
