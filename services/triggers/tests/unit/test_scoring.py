import json
import math

import pytest
from beckon_contracts.scoring import Behaviour, ScoreRule, ScoringConfig
from pydantic import ValidationError
from triggers.domain.observation import Observation, Product
from triggers.domain.scoring import Scorer, behaviours_of
from triggers.domain.state import VisitorState, apply

T0 = 1_800_000_000.0
DAY = 86400.0
WEEK = 7 * DAY


# ---- behaviours from events -----------------------------------------------------------------


def _obs(kind="page_viewed", at=T0, session="s1", url="https://shop.example/", **fields):
    return Observation(
        event_id=f"e{at}{kind}{url}",
        type=kind,
        site_id="demo",
        visitor_id="v1",
        session_id=session,
        at=at,
        url=url,
        **fields,
    )


def _product(pid="p1"):
    return Product(product_id=pid, name="Boots", category="shoes", price=99.0, currency="EUR")


def _feed(state, obs, **options):
    before_cart, before_identified = state.cart_value, state.identified
    applied = apply(state, obs)
    options.setdefault("previous_cart_value", before_cart)
    options.setdefault("was_identified", before_identified)
    found = behaviours_of(applied, obs, state, **options)
    return [behaviour for behaviour, _ in found], found


def test_first_page_view_is_a_page_view_and_not_a_return_visit():
    kinds, _ = _feed(VisitorState("demo", "v1"), _obs())
    assert kinds == [Behaviour.PAGE_VIEW]


def test_return_visit_is_a_new_session_after_the_first():
    state = VisitorState("demo", "v1")
    _feed(state, _obs())
    kinds, _ = _feed(state, _obs(at=T0 + DAY, session="s2", url="https://shop.example/x"))
    assert Behaviour.RETURN_VISIT in kinds


def test_campaign_and_email_arrivals_count_once_per_session():
    state = VisitorState("demo", "v1")
    kinds, _ = _feed(state, _obs(campaign_source="google", campaign_medium="cpc"))
    assert Behaviour.CAMPAIGN_ARRIVAL in kinds
    assert Behaviour.EMAIL_ARRIVAL not in kinds
    kinds, _ = _feed(state, _obs(at=T0 + 5, url="https://shop.example/2", campaign_source="google"))
    assert Behaviour.CAMPAIGN_ARRIVAL not in kinds  # same session
    kinds, _ = _feed(state, _obs(at=T0 + DAY, session="s2", campaign_medium="email"))
    assert Behaviour.EMAIL_ARRIVAL in kinds
    assert Behaviour.CAMPAIGN_ARRIVAL not in kinds


def test_product_views_price_and_repeat_views():
    state = VisitorState("demo", "v1")
    first, _ = _feed(
        state, _obs("product_viewed", url="https://shop.example/p1", product=_product())
    )
    assert first == [Behaviour.PAGE_VIEW, Behaviour.PRODUCT_VIEW, Behaviour.SEEN_PRICE]
    _feed(state, _obs(at=T0 + 10, url="https://shop.example/other"))
    again, _ = _feed(
        state, _obs("product_viewed", at=T0 + 20, url="https://shop.example/p1", product=_product())
    )
    assert again == [Behaviour.PAGE_VIEW, Behaviour.REPEAT_PRODUCT_VIEW]


def test_cart_add_scores_the_increase_of_the_cart_value():
    state = VisitorState("demo", "v1")
    _, found = _feed(state, _obs("cart_updated", cart_value=100.0, cart_items=1, currency="EUR"))
    assert (Behaviour.CART_ADD, 1.0) in found
    assert (Behaviour.CART_VALUE, 100.0) in found
    _, found = _feed(state, _obs("cart_updated", at=T0 + 5, cart_value=160.0, currency="EUR"))
    assert (Behaviour.CART_VALUE, 60.0) in found
    kinds, _ = _feed(state, _obs("cart_updated", at=T0 + 9, cart_value=20.0, currency="EUR"))
    assert Behaviour.CART_ADD not in kinds
    assert Behaviour.CART_VALUE not in kinds


def test_without_the_previous_cart_value_the_whole_cart_counts():
    state = VisitorState("demo", "v1")
    _feed(state, _obs("cart_updated", cart_value=100.0, currency="EUR"))
    _, found = _feed(
        state,
        _obs("cart_updated", at=T0 + 5, cart_value=150.0, currency="EUR"),
        previous_cart_value=None,
    )
    assert (Behaviour.CART_VALUE, 150.0) in found


def test_checkout_started_counts_on_the_first_checkout_event_of_the_session():
    state = VisitorState("demo", "v1")
    checkout = {"cart_value": 80.0, "currency": "EUR", "url": "https://shop.example/checkout"}
    kinds, _ = _feed(state, _obs("checkout_started", **checkout))
    assert Behaviour.CHECKOUT_STARTED in kinds
    assert Behaviour.CART_ADD not in kinds  # a checkout is not a cart add
    kinds, _ = _feed(state, _obs("checkout_started", at=T0 + 30, **checkout))
    assert Behaviour.CHECKOUT_STARTED not in kinds


def test_order_carries_its_value():
    state = VisitorState("demo", "v1")
    _, found = _feed(state, _obs("order_completed", order_id="o1", order_value=250.0))
    assert (Behaviour.ORDER_COMPLETED, 250.0) in found


def test_identified_counts_only_the_first_time():
    state = VisitorState("demo", "v1")
    kinds, _ = _feed(state, _obs("identified", traits={"email": "a@b.c"}))
    assert Behaviour.IDENTIFIED in kinds
    kinds, _ = _feed(state, _obs("identified", at=T0 + 5, traits={"email": "a@b.c"}))
    assert Behaviour.IDENTIFIED not in kinds


def test_bots_and_heartbeats_earn_nothing():
    state = VisitorState("demo", "v1")
    assert _feed(state, _obs(is_bot=True, campaign_source="x"))[0] == []
    assert _feed(state, _obs("heartbeat", at=T0 + 15))[0] == []


# ---- points -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "value", "points"),
    [
        (Behaviour.PRODUCT_VIEW, 1.0, 3.0),
        (Behaviour.REPEAT_PRODUCT_VIEW, 1.0, 5.0),
        (Behaviour.SEEN_PRICE, 1.0, 2.0),
        (Behaviour.CART_ADD, 1.0, 10.0),
        (Behaviour.CART_VALUE, 125.0, 5.0),  # 2 points per 50
        (Behaviour.CHECKOUT_STARTED, 1.0, 20.0),
        (Behaviour.ORDER_COMPLETED, 999.0, 30.0),  # flat: no `per` by default
        (Behaviour.RETURN_VISIT, 1.0, 10.0),
        (Behaviour.CAMPAIGN_ARRIVAL, 1.0, 5.0),
        (Behaviour.EMAIL_ARRIVAL, 1.0, 10.0),
        (Behaviour.IDENTIFIED, 1.0, 10.0),
        (Behaviour.CHAT_ACCEPTED, 1.0, 10.0),
    ],
)
def test_every_behaviour_earns_its_default_points(behaviour, value, points):
    state: dict = {}
    result = Scorer(ScoringConfig()).apply(state, [(behaviour, value)], T0)
    assert result.score == points
    assert result.changed
    assert result.breakdown == {behaviour.value: points}


def test_page_view_rules_match_their_url_glob():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    other = scorer.apply(state, [(Behaviour.PAGE_VIEW, 1.0)], T0, url="https://shop.example/shoes")
    assert (other.score, other.changed, state) == (0.0, False, {})
    pricing = scorer.apply(
        state, [(Behaviour.PAGE_VIEW, 1.0)], T0, url="https://shop.example/pricing?plan=pro"
    )
    assert pricing.score == 5.0
    assert pricing.breakdown == {"page_view */pricing*": 5.0}
    assert scorer.apply(state, [(Behaviour.PAGE_VIEW, 1.0)], T0).score == 5.0  # no url: no match


def test_observe_scores_one_event_with_its_url():
    scorer = Scorer(ScoringConfig())
    state = VisitorState("demo", "v1")
    obs = _obs("product_viewed", url="https://shop.example/p1", product=_product())
    result = scorer.observe(state.score_state, apply(state, obs), obs, state)
    assert result.score == 5.0  # product view 3 + seen price 2
    assert state.score_state["t"] == T0


def test_negative_points_lower_the_score_but_never_below_zero():
    config = ScoringConfig(
        rules=[
            ScoreRule(behaviour=Behaviour.CART_ADD, points=10),
            ScoreRule(behaviour=Behaviour.PAGE_VIEW, points=-4, url="*/careers*", group="intent"),
        ]
    )
    scorer = Scorer(config)
    state: dict = {}
    scorer.apply(state, [(Behaviour.CART_ADD, 1.0)], T0)
    result = scorer.apply(state, [(Behaviour.PAGE_VIEW, 1.0)], T0, url="https://x.example/careers")
    assert result.score == 6.0
    assert result.breakdown == {"cart_add": 10.0, "page_view */careers*": -4.0}
    for _ in range(3):
        result = scorer.apply(
            state, [(Behaviour.PAGE_VIEW, 1.0)], T0, url="https://x.example/careers"
        )
    assert result.score == 0.0


# ---- decay ---------------------------------------------------------------------------------


def test_points_halve_every_half_life():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    scorer.apply(state, [(Behaviour.CHECKOUT_STARTED, 1.0)], T0)  # 20 points
    assert scorer.current(state, T0).score == 20.0
    assert scorer.current(state, T0 + WEEK).score == 10.0
    assert scorer.current(state, T0 + 2 * WEEK).score == 5.0
    assert scorer.current(state, T0 + 2 * WEEK).breakdown == {"checkout_started": 5.0}
    later = scorer.apply(state, [(Behaviour.CART_ADD, 1.0)], T0 + WEEK)
    assert later.score == 20.0  # 10 left of the checkout + 10 for the cart add
    assert later.breakdown == {"checkout_started": 10.0, "cart_add": 10.0}


def test_half_life_comes_from_the_config():
    scorer = Scorer(ScoringConfig(half_life="12h"))
    state: dict = {}
    scorer.apply(state, [(Behaviour.CHECKOUT_STARTED, 1.0)], T0)
    assert scorer.current(state, T0 + 12 * 3600).score == 10.0


def test_frequent_events_still_decay():
    """Events seconds apart must not round the decay away."""
    scorer = Scorer(ScoringConfig(half_life="1h"))
    state: dict = {}
    scorer.apply(state, [(Behaviour.CHECKOUT_STARTED, 1.0)], T0)
    at = T0
    for _ in range(3600):  # a campaign arrival every second adds nothing once source is capped
        at += 1
        scorer.apply(state, [(Behaviour.CAMPAIGN_ARRIVAL, 1.0)], at)
    assert scorer.current(state, at).breakdown["checkout_started"] == 10.0


def test_a_long_absence_reanchors_and_drops_dust():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    scorer.apply(state, [(Behaviour.CHECKOUT_STARTED, 1.0)], T0)
    scorer.apply(state, [(Behaviour.SEEN_PRICE, 1.0)], T0 + 10 * WEEK)
    assert state["a"] == T0 + 10 * WEEK
    assert state["g"] == {"interest": 2.0}
    assert state["b"] == {"seen_price": 2.0}
    after_month = scorer.apply(state, [(Behaviour.CART_ADD, 1.0)], T0 + 14 * WEEK)
    assert after_month.score == pytest.approx(2 / 16 + 10, abs=0.05)


def test_late_events_never_move_the_clock_back():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    scorer.apply(state, [(Behaviour.CART_ADD, 1.0)], T0 + WEEK)
    late = scorer.apply(state, [(Behaviour.CHECKOUT_STARTED, 1.0)], T0)
    assert state["t"] == T0 + WEEK
    assert late.score == 20.0  # 10 + 20 earned a week earlier, now worth 10


# ---- caps ----------------------------------------------------------------------------------


def test_group_caps_limit_a_group_and_bank_nothing_beyond():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    for _ in range(20):
        result = scorer.apply(state, [(Behaviour.REPEAT_PRODUCT_VIEW, 1.0)], T0)
    assert result.score == 30.0  # interest cap
    assert sum(result.breakdown.values()) == 30.0
    decayed = scorer.apply(state, [(Behaviour.REPEAT_PRODUCT_VIEW, 1.0)], T0 + WEEK)
    assert decayed.score == 20.0  # 15 left + 5: the extra views were not banked
    other_group = scorer.apply(state, [(Behaviour.CART_ADD, 1.0)], T0 + WEEK)
    assert other_group.score == 30.0


def test_uncapped_groups_add_up():
    config = ScoringConfig(caps={})
    scorer = Scorer(config)
    state: dict = {}
    for _ in range(20):
        result = scorer.apply(state, [(Behaviour.REPEAT_PRODUCT_VIEW, 1.0)], T0)
    assert result.score == 100.0


# ---- segments ------------------------------------------------------------------------------


def test_thresholds_are_crossed_once_on_the_way_up():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    steps = [
        (Behaviour.CHECKOUT_STARTED, 20.0, "cold", "cold", False),
        (Behaviour.CART_ADD, 30.0, "warm", "cold", True),
        (Behaviour.PRODUCT_VIEW, 33.0, "warm", "warm", False),
        (Behaviour.RETURN_VISIT, 43.0, "warm", "warm", False),
        (Behaviour.ORDER_COMPLETED, 73.0, "hot", "warm", True),
        (Behaviour.SEEN_PRICE, 75.0, "hot", "hot", False),
    ]
    for behaviour, score, segment, previous, crossed in steps:
        result = scorer.apply(state, [(behaviour, 1.0)], T0)
        assert (result.score, result.segment, result.previous_segment, result.crossed) == (
            score,
            segment,
            previous,
            crossed,
        ), behaviour


def test_decay_lowers_the_segment_without_crossing():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    assert scorer.apply(state, [(Behaviour.ORDER_COMPLETED, 1.0)], T0).segment == "warm"
    cooled = scorer.current(state, T0 + WEEK)
    assert (cooled.segment, cooled.previous_segment, cooled.crossed) == ("cold", "warm", False)
    assert scorer.segment_of(29.9) == "cold"
    assert scorer.segment_of(30.0) == "warm"
    assert scorer.segment_of(60.0) == "hot"


def test_score_state_is_small_plain_json():
    scorer = Scorer(ScoringConfig())
    state: dict = {}
    for behaviour in Behaviour:
        scorer.apply(state, [(behaviour, 100.0)], T0, url="https://shop.example/pricing")
    assert json.loads(json.dumps(state)) == state
    assert len(json.dumps(state)) < 600
    assert sum(state["g"].values()) == pytest.approx(sum(state["b"].values()))


# ---- config --------------------------------------------------------------------------------


def test_default_config_round_trips_through_json():
    config = ScoringConfig()
    assert ScoringConfig.model_validate(config.model_dump(mode="json")) == config
    assert ScoringConfig.model_validate_json(config.model_dump_json()) == config
    assert config.half_life == WEEK
    assert config.caps == {"interest": 30.0, "intent": 60.0, "engagement": 20.0, "source": 15.0}
    assert config.thresholds == {"warm": 30.0, "hot": 60.0}


def test_custom_config_round_trips():
    config = ScoringConfig.model_validate(
        {
            "rules": [
                {"behaviour": "order_completed", "points": 1, "per": 100},
                {"behaviour": "page_view", "points": 4, "url": "*/pricing*", "group": "pricing"},
            ],
            "caps": {"pricing": 8},
            "half_life": "30m",
            "thresholds": {"warm": 10, "hot": 20, "burning": 50},
        }
    )
    assert config.half_life == 1800.0
    assert config.rules[0].group == "intent"
    assert ScoringConfig.model_validate(config.model_dump(mode="json")) == config
    result = Scorer(config).apply({}, [(Behaviour.ORDER_COMPLETED, 1250.0)], T0)
    assert (result.score, result.segment) == (12.5, "warm")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45.0), ("30m", 1800.0), ("12h", 43200.0), ("7d", WEEK), (90, 90.0)],
)
def test_half_life_accepts_short_durations(text, seconds):
    assert ScoringConfig(half_life=text).half_life == seconds


@pytest.mark.parametrize(
    "bad",
    [
        {"half_life": "7 weeks"},
        {"half_life": 0},
        {"half_life": "400d"},
        {"thresholds": {"cold": 5}},
        {"thresholds": {"warm": 30, "hot": 30}},
        {"thresholds": {"warm": -1}},
        {"thresholds": {"Warm Lead": 30}},
        {"caps": {"interest": 0}},
        {"rules": [{"behaviour": "product_view", "points": 3, "per": 10}]},
        {"rules": [{"behaviour": "cart_value", "points": 3}]},
        {"rules": [{"behaviour": "product_view", "points": 3, "url": "*/p/*"}]},
        {"rules": [{"behaviour": "teleported", "points": 3}]},
        {"rules": [{"behaviour": "cart_add", "points": math.inf}]},
        {"rules": [{"behaviour": "cart_add", "points": 1}, {"behaviour": "cart_add", "points": 2}]},
        {"unknown": 1},
    ],
)
def test_invalid_configs_are_rejected(bad):
    with pytest.raises(ValidationError):
        ScoringConfig.model_validate(bad)


def test_two_page_view_rules_with_different_globs_are_fine():
    config = ScoringConfig(
        rules=[
            ScoreRule(behaviour=Behaviour.PAGE_VIEW, points=5, url="*/pricing*"),
            ScoreRule(behaviour=Behaviour.PAGE_VIEW, points=2, url="*/shipping*"),
        ]
    )
    assert [rule.group for rule in config.rules] == ["interest", "interest"]


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        ScoringConfig().half_life = 5  # type: ignore[misc]
