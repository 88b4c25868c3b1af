"""What Faust's consumer is doing now, for `/v1/debug/consumer` (dev only).

Flow control, Faust's active/paused/buffered partitions, its read and committed offsets, table
recovery, aiokafka's positions and high watermarks, and the agents' queues: enough to tell a
worker that is starved (positions at the high watermark, nothing read) from one that is
blocked (records queued, a stage waiting). It reads private attributes of Faust and aiokafka
(faust-streaming 0.15, aiokafka 0.14) and reports what it cannot read instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _name(tp: Any) -> str:
    return f"{tp.topic}[{tp.partition}]"


def _tps(tps: Iterable[Any] | None) -> list[str]:
    return sorted(_name(tp) for tp in (tps or ()))


def _offsets(offsets: Mapping[Any, Any]) -> dict[str, Any]:
    return {_name(tp): offset for tp, offset in sorted(offsets.items(), key=lambda i: _name(i[0]))}


def consumer_state(app: Any) -> dict[str, Any]:
    consumer = app.consumer
    recovery = app.tables.recovery
    state: dict[str, Any] = {
        "flow_active": consumer.flow_active,
        "app_flow_control_active": app.flow_control.is_active(),
        "rebalancing": app.rebalancing,
        "generation": app.consumer_generation_id,
        "active": _tps(consumer._active_partitions),
        "paused": _tps(consumer._paused_partitions),
        "buffered": _tps(consumer._buffered_partitions),
        "read_offset": _offsets(consumer._read_offset),
        "committed": _offsets(consumer._committed_offset),
        "unacked": len(consumer._unacked_messages),
        "recovery": {
            "in_recovery": recovery.in_recovery,
            "completed": recovery.completed.is_set(),
            "active_remaining": recovery.active_remaining_total(),
        },
        "queues": {agent.name: agent.channel.queue.qsize() for agent in app.agents.values()},
    }
    try:
        assignment = consumer._thread._consumer._subscription.subscription.assignment
        state["aiokafka"] = {
            _name(tp): {
                "position": assignment.state_value(tp)._position,
                "highwater": assignment.state_value(tp).highwater,
                "paused": assignment.state_value(tp).paused,
            }
            for tp in sorted(assignment.tps, key=_name)
        }
    except AttributeError as exc:  # no assignment yet, or another aiokafka
        state["aiokafka"] = f"unavailable: {exc}"
    return state
