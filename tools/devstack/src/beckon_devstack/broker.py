"""The dev stack's broker process, and the check that a broker really serves.

`make dev` runs `python -m beckon_devstack.broker --data-dir .dev/kafka --port 9092` as its
`broker` child: Apache Kafka (`beckon_devstack.kafka.KafkaBroker`) in the foreground, with its
log directory under the state directory, so topics, records and consumer offsets outlive a
restart of the stack. SIGTERM (the supervisor's stop) shuts the broker down cleanly before
this process exits, so nothing is left for the supervisor to kill.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from beckon_devstack.ports import PortInUseError, ensure_free


async def wait_until_serving(bootstrap: str, timeout_s: float = 30.0) -> None:
    """Wait until the broker answers a metadata request (listening is not enough) and has a
    group coordinator: on a new broker, the first FindCoordinator creates `__consumer_offsets`,
    and until it exists every consumer group's first join logs errors and waits."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            await admin.find_coordinator("beckon-warm-up")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await admin.close()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    from beckon_devstack.kafka import KAFKA_VERSION, KafkaBroker, KafkaSetupError

    parser = argparse.ArgumentParser(
        prog="python -m beckon_devstack.broker",
        description="Apache Kafka in the foreground for the dev stack; SIGTERM stops it cleanly.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="log directory and config")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the clients' port")
    parser.add_argument("--heap-mb", type=int, default=512)
    args = parser.parse_args(argv)
    try:
        ensure_free("Kafka broker", args.host, args.port)
    except PortInUseError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    broker = KafkaBroker(
        args.data_dir,
        port=args.port,
        host=args.host,
        heap_mb=args.heap_mb,
        progress=lambda line: print(line, flush=True),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_stop)
    try:
        fresh = not (broker.logs_dir / "meta.properties").exists()
        broker.start()
        state = "a new log directory" if fresh else "the records of earlier runs"
        print(
            f"Apache Kafka {KAFKA_VERSION} on {broker.bootstrap} with {state} in "
            f"{broker.logs_dir}; the broker's own log: {broker.data_dir / 'broker.log'}",
            flush=True,
        )
        assert broker.process is not None
        returncode = broker.process.wait()
        print(f"Kafka exited with {returncode}; see {broker.data_dir / 'broker.log'}", flush=True)
        return returncode or 1
    except _Stop as stop:
        print(f"{stop}: stopping Kafka", flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        broker.stop()
        return 0
    except (KafkaSetupError, RuntimeError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
