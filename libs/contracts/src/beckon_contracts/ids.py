"""UUIDv7 event ids: time-ordered, so they sort by creation and index well as dedup keys."""

from __future__ import annotations

import hashlib
import os
import time
import uuid


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A RFC 9562 version-7 UUID (48-bit millisecond timestamp, 74 random bits)."""
    ms = int(time.time() * 1000) if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    """The millisecond timestamp stored in a UUIDv7."""
    return value.int >> 80


def derived_uuid7(seed: str, unix_ms: int) -> uuid.UUID:
    """A UUIDv7 that is always the same for one seed: retries and replays keep their id."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | ((digest >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | digest & ((1 << 62) - 1)
    return uuid.UUID(int=value)
