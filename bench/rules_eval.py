"""Cost of evaluating one site's rules on one event (pure CPU, no Kafka).

    uv run python bench/rules_eval.py [--events 20000] [--repeat 5]

Twenty rules (the demo file's eight plus twelve more over URLs, categories, sources, scores
and events) are compiled once; a few hundred visitors' states are built by applying a
realistic event mix with `triggers.domain.state.apply`; then `CompiledRules.evaluate` is
timed alone over those (state, event) pairs. Reports the best of `--repeat` runs, in µs per
event, for all visitors past `min_browsing` (every rule's condition is tried) and for a mix
that includes fresh visitors. The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: bench/triggers.py must not shadow `triggers`
    sys.path[:] = [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]

from beckon_contracts.rules import Rule, SiteRules
from triggers.domain.observation import Observation, Product
from triggers.domain.rules import CompiledRules
from triggers.domain.state import VisitorState, apply
from triggers.rules_file import load_rules_file

DEMO = Path(__file__).resolve().parents[1] / "services/triggers/rules/demo.yaml"
EXTRA_RULES = [
    {
        "id": "shoes-size",
        "when": {"all": [{"category": "shoes"}, {"time_on_page": {"gte": "40s"}}]},
    },
    {
        "id": "apparel-2",
        "when": {"all": [{"categories_viewed": ["apparel"]}, {"cart_items": {"gte": 2}}]},
    },
    {
        "id": "google-ads",
        "when": {"all": [{"source": "google"}, {"medium": "cpc"}, {"seen_price": True}]},
    },
    {
        "id": "spring",
        "when": {"all": [{"campaign": ["spring", "summer"]}, {"time_on_site": {"gte": 60}}]},
    },
    {"id": "warm", "when": {"all": [{"score": {"gte": 30, "lt": 60}}, {"page_type": "product"}]}},
    {
        "id": "search",
        "when": {"all": [{"url": {"regex": r"[?&]q="}}, {"time_on_page": {"gte": 30}}]},
    },
    {"id": "compare", "when": {"any": [{"url": "*/compare*"}, {"url": {"contains": "vs"}}]}},
    {"id": "referral", "when": {"all": [{"referrer": "*outdoor-forum*"}, {"returning": False}]}},
    {"id": "cart-drop", "when": {"all": [{"event": "cart_updated"}, {"cart_value": {"lt": 30}}]}},
    {"id": "signup", "when": {"custom_event": "newsletter_signup"}},
    {"id": "vip", "when": {"all": [{"identified": True}, {"orders": {"gte": 3}}]}},
    {
        "id": "long-read",
        "when": {"all": [{"page_type": "content"}, {"time_on_page": {"gte": "2m"}}]},
    },
]
PATHS = ["/", "/c/shoes", "/c/apparel", "/p/trail-runner-x", "/p/rain-shell", "/cart", "/checkout"]
PRODUCTS = {
    "/p/trail-runner-x": Product("trail-runner-x", "Trail Runner X", "shoes", 129.9, "EUR"),
    "/p/rain-shell": Product("rain-shell", "Rain Shell Jacket", "apparel", 179.0, "EUR"),
}


def site_rules() -> SiteRules:
    demo = load_rules_file(DEMO)[0]
    extra = [
        Rule.model_validate({"name": r["id"], "message": "Questions about {page_title}?", **r})
        for r in EXTRA_RULES
    ]
    return demo.model_copy(update={"rules": [*demo.rules, *extra]})


def observation(rng: random.Random, visitor: str, at: float) -> Observation:
    path = rng.choice(PATHS)
    kind = rng.choices(["heartbeat", "page_viewed", "cart_updated"], [6, 3, 1])[0]
    common: dict[str, Any] = {
        "event_id": f"e{rng.random()}",
        "site_id": "demo",
        "visitor_id": visitor,
        "session_id": "s1",
        "at": at,
        "url": f"https://demo.example{path}",
        "path": path,
        "title": "Ridgeline",
    }
    if kind == "page_viewed" and path in PRODUCTS:
        return Observation(
            type="product_viewed", product=PRODUCTS[path], page_type="product", **common
        )
    if kind == "page_viewed":
        page_type = {"/": "home", "/cart": "cart", "/checkout": "checkout"}.get(path, "category")
        return Observation(type="page_viewed", page_type=page_type, **common)
    if kind == "cart_updated":
        value = rng.choice([19.9, 49.5, 129.9, 308.9])
        return Observation(
            type="cart_updated", cart_value=value, cart_items=2, currency="EUR", **common
        )
    return Observation(type="heartbeat", **common)


def workload(
    rng: random.Random, events: int, fresh_share: float
) -> list[tuple[VisitorState, Observation]]:
    pairs = []
    start = 1_700_000_000.0
    for i in range(events):
        state = VisitorState(site_id="demo", visitor_id=f"v{i % 500}")
        fresh = rng.random() < fresh_share
        at = start
        for _ in range(rng.randint(3, 12)):
            at += rng.uniform(1, 3) if fresh else rng.uniform(5, 40)
            apply(state, observation(rng, state.visitor_id, at))
        last = observation(rng, state.visitor_id, at + 5)
        apply(state, last)
        if rng.random() < 0.3:
            state.segment, state.score = "warm", 45.0
        pairs.append((state, last))
    return pairs


def timed(
    compiled: CompiledRules, pairs: list[tuple[VisitorState, Observation]], repeat: int
) -> tuple[float, int]:
    best = float("inf")
    matched = 0
    evaluate = compiled.evaluate
    for _ in range(repeat):
        t0 = time.perf_counter()
        matched = 0
        for state, obs in pairs:
            matched += len(evaluate(state, obs))
        best = min(best, time.perf_counter() - t0)
    return best / len(pairs) * 1e6, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    site = site_rules()
    compiled = CompiledRules.from_site(site)
    rng = random.Random(7)
    browsing = workload(rng, args.events, fresh_share=0.0)
    mixed = workload(rng, args.events, fresh_share=0.3)
    us_browsing, matched_browsing = timed(compiled, browsing, args.repeat)
    us_mixed, matched_mixed = timed(compiled, mixed, args.repeat)
    print(f"{len(compiled.rules)} rules, {args.events} events, best of {args.repeat}")
    print(f"  past min_browsing: {us_browsing:6.2f} µs/event ({matched_browsing} matches)")
    print(f"  30 % fresh:        {us_mixed:6.2f} µs/event ({matched_mixed} matches)")
    result = {
        "rules": len(compiled.rules),
        "events": args.events,
        "us_per_event_browsing": round(us_browsing, 2),
        "us_per_event_mixed": round(us_mixed, 2),
        "matches_browsing": matched_browsing,
        "matches_mixed": matched_mixed,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
