from beckon_edge import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_with_the_wait_until_allowed():
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == 0.5  # one token refills in 1/2 s
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0


def test_keys_are_independent_and_cost_counts():
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=1, burst=10, clock=clock)
    assert limiter.acquire("a", cost=10) == 0.0
    assert limiter.acquire("a", cost=1) > 0
    assert limiter.acquire("b", cost=10) == 0.0


def test_a_cost_above_the_burst_waits_for_a_full_bucket_not_forever():
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=10, burst=5, clock=clock)
    assert limiter.acquire("a", cost=5) == 0.0
    assert limiter.acquire("a", cost=50) == 0.5


def test_memory_stays_bounded_and_idle_keys_are_forgotten():
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=100, burst=1, max_keys=100, clock=clock)
    for i in range(100):
        limiter.acquire(i)
    clock.now += 1  # every bucket has refilled
    limiter.acquire("fresh")
    assert len(limiter._buckets) <= 100
    assert "fresh" in limiter._buckets
    for i in range(1000):  # all active at once: keeps the newest half
        limiter.acquire(("burst", i))
    assert len(limiter._buckets) <= 100


def test_a_refund_gives_tokens_back_up_to_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=1, burst=2, clock=clock)
    assert [limiter.acquire("k") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("k") > 0
    limiter.refund("k")
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") > 0
    limiter.refund("k", cost=5)  # capped: a refund never raises the burst
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 1.0]
    limiter.refund("never-seen")
    assert "never-seen" not in limiter._buckets
