"""Token buckets keyed by client or visitor: steady rates with bursts, bounded memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_keys: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def acquire(self, key: Hashable, cost: int = 1) -> float:
        """Take `cost` tokens; 0.0 when allowed, otherwise the seconds until it would be."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            return (min(cost, self.burst) - tokens) / self.rate
        self._buckets[key] = (tokens - cost, now)
        if len(self._buckets) > self.max_keys:
            self._forget_idle(now)
        return 0.0

    def refund(self, key: Hashable, cost: int = 1) -> None:
        """Give back tokens taken for something that turned out not to count (e.g. a login
        that succeeded); never above the burst, and a key never seen stays unseen."""
        state = self._buckets.get(key)
        if state is None:
            return
        now = self._clock()
        tokens = min(self.burst, state[0] + (now - state[1]) * self.rate + cost)
        self._buckets[key] = (tokens, now)

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes no future answer."""
        refill_s = self.burst / self.rate
        self._buckets = {
            key: state for key, state in self._buckets.items() if now - state[1] < refill_s
        }
        if len(self._buckets) > self.max_keys:  # still full of active keys: keep the newest half
            keep = list(self._buckets.items())[len(self._buckets) // 2 :]
            self._buckets = dict(keep)
