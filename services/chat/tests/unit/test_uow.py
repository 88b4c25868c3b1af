"""The unit of work's contract, as the fake that use-case tests run on keeps it."""

from __future__ import annotations

import pytest
from fake_uow import FakeUnitsOfWork

CONVERSATION = "0190a0a0-0000-7000-8000-000000000001"


class Counter:
    def __init__(self) -> None:
        self.n = 0


async def test_a_clean_exit_commits_what_the_unit_collected() -> None:
    uow = FakeUnitsOfWork({Counter: Counter()})
    async with uow("s1", lock=True) as tx:
        tx.store(Counter).n += 1
        tx.emit(
            "conversation.tagged",
            "v1",
            "c1",
            conversation_id=CONVERSATION,
            tags=["x"],
        )
        await tx.agent_changed("a1")
    assert [t.lock for t in uow.committed] == [True]
    assert uow.committed[0].kinds() == ["conversation.tagged"]
    assert uow.committed[0].agents == {"a1"}
    assert uow.stores[Counter].n == 1


class Refused(Exception):
    pass


async def _tag_then_refuse(uow: FakeUnitsOfWork) -> None:
    async with uow("s1") as tx:
        tx.emit("conversation.tagged", "v1", "c1", conversation_id=CONVERSATION, tags=["x"])
        raise Refused


async def test_an_exception_rolls_back_and_nothing_is_published() -> None:
    uow = FakeUnitsOfWork()
    with pytest.raises(Refused):
        await _tag_then_refuse(uow)
    assert uow.committed == []
    assert uow.records == []
    assert len(uow.rolled_back) == 1


async def test_a_read_only_unit_refuses_to_publish_and_unknown_stores_are_named() -> None:
    uow = FakeUnitsOfWork()
    async with uow.read("s1") as tx:
        with pytest.raises(RuntimeError, match="read-only"):
            tx.emit(
                "conversation.tagged",
                "v1",
                "c1",
                conversation_id=CONVERSATION,
                tags=["x"],
            )
        with pytest.raises(AssertionError, match="Counter"):
            tx.store(Counter)
