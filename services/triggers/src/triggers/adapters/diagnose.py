"""What Faust's consumer is doing now: flow control, partitions, positions, queues."""

from __future__ import annotations

from typing import Any


def _tps(tps: Any) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in (tps or ()))


def consumer_state(app: Any) -> dict[str, Any]:
    consumer = app.consumer
    state: dict[str, Any] = {
        "flow_active": consumer.flow_active,
        "can_resume_flow": consumer.can_resume_flow.is_set(),
        "suspend_flow": consumer.suspend_flow.is_set(),
        "app_flow_control_active": app.flow_control.is_active(),
        "in_recovery": app.in_recovery,
        "rebalancing": app.rebalancing,
        "generation": app.consumer_generation_id,
        "active": _tps(consumer._active_partitions),
        "paused": _tps(consumer._paused_partitions),
        "buffered": _tps(consumer._buffered_partitions),
        "read_offset": {f"{tp.topic}[{tp.partition}]": o for tp, o in consumer._read_offset.items()},
        "committed": {
            f"{tp.topic}[{tp.partition}]": o for tp, o in consumer._committed_offset.items()
        },
        "n_unacked": len(consumer._unacked_messages),
    }
    recovery = app.tables.recovery
    state["recovery"] = {
        "in_recovery": recovery.in_recovery,
        "active_tps": _tps(recovery.active_tps),
        "standby_tps": _tps(recovery.standby_tps),
        "active_remaining": recovery.active_remaining_total(),
        "completed": recovery.completed.is_set() if hasattr(recovery, "completed") else None,
        "signal_recovery_start": recovery.signal_recovery_start.is_set()
        if hasattr(recovery, "signal_recovery_start")
        else None,
    }
    try:
        ak = consumer._thread._consumer
        subs = ak._subscription.subscription
        positions = {}
        if subs is not None and subs.assignment is not None:
            for tp in subs.assignment.tps:
                st = subs.assignment.state_value(tp)
                positions[f"{tp.topic}[{tp.partition}]"] = {
                    "position": st._position if hasattr(st, "_position") else None,
                    "paused": st.paused,
                    "hw": st.highwater,
                    "has_valid_position": st.has_valid_position,
                }
        state["aiokafka"] = positions
        fetcher = ak._fetcher
        state["aiokafka_buffered"] = {
            f"{tp.topic}[{tp.partition}]": len(getattr(rec, "_records", []) or [])
            if not hasattr(rec, "_partition_records") else -1
            for tp, rec in getattr(fetcher, "_records", {}).items()
        }
    except Exception as exc:  # diagnostics must never fail
        state["aiokafka_error"] = repr(exc)
    queues = {}
    for agent in app.agents.values():
        try:
            channel = agent.channel
            queues[agent.name] = channel.queue.qsize()
        except Exception as exc:
            queues[agent.name] = repr(exc)
    for topic in list(app.topics):
        try:
            queues[f"topic:{','.join(topic.topics)}"] = topic.queue.qsize()
        except Exception:
            pass
    state["queues"] = queues
    return state
