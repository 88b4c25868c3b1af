"""Running `beckon-dev` as a subprocess, reading its output, and checking what it leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from beckon_devstack.supervisor import READY_MARKER

# generous: these guard against a hang, they are not performance assertions
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would steer the dev stack."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BECKON_DEV_") and name != "DATABASE_URL"
    }
    return {**env, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Supervisor:
    """One `python -m beckon_devstack.supervisor` child and every line it printed."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> Supervisor:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "beckon_devstack.supervisor",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env or clean_env(),
        )
        supervisor = cls(process)
        supervisor._reader = asyncio.create_task(supervisor._read())
        return supervisor

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(
        self, matches: Callable[[str], bool], timeout_s: float = START_TIMEOUT_S
    ) -> str:
        async def scan() -> str:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if matches(line):
                        return line
                seen = len(self.lines)
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"the supervisor ended first:\n{self.output}")
                self._new_line.clear()
                await self._new_line.wait()

        try:
            return await asyncio.wait_for(scan(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"no such line after {timeout_s}s:\n{self.output}") from None

    async def wait_ready(self) -> None:
        """Until the whole table is printed: the ready line, the addresses, then `logs`."""
        await self.wait_for_line(lambda line: READY_MARKER in line)
        await self.wait_for_line(lambda line: line.startswith("  logs "))

    def table_value(self, label: str) -> str:
        """A value from the table printed once the stack is ready (`  label   value`)."""
        pattern = re.compile(rf"^  {re.escape(label)}\s{{2,}}(\S+)")
        for line in self.lines:
            found = pattern.match(line)
            if found:
                return found.group(1)
        raise AssertionError(f"no {label!r} in the table:\n{self.output}")

    def descendants(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    async def wait_exit(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"the supervisor did not exit:\n{self.output}") from None
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        """Clean-up after a failed test: a normal stop first (it also stops the embedded
        Postgres, which is not our descendant), then the whole tree, hard."""
        if self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            return
        except TimeoutError:
            pass
        for pid in self.descendants():
            kill_quietly(pid)
        self.process.kill()
        await self.process.wait()


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def postmaster_pid(pg_data: Path) -> int:
    """The pid in postmaster.pid: the server's, or, while initdb runs Postgres in single-user
    mode, that backend's, written negated (`-pid`; Postgres' miscinit.c)."""
    return abs(int((pg_data / "postmaster.pid").read_text().splitlines()[0]))
