"""The reports' maths (chat.reports.domain), without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from chat.reports.domain import (
    NO_CURRENCY,
    Assignment,
    Conversation,
    Message,
    Order,
    Period,
    PeriodError,
    Report,
    assisted_report_figures,
    assisted_share,
    attribute,
    concurrent_load,
    currencies_of,
    first_response_s,
    influenced,
    parse_period,
    ratio,
    response_waits,
)

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def conv(
    cid: str = "c1",
    *,
    agent: str | None = "ann",
    team: str = "sales",
    visitor: str = "v1",
    created: float = 0,
    assigned: float | None = 0,
    closed: float | None = None,
) -> Conversation:
    return Conversation(
        conversation_id=cid,
        visitor_id=visitor,
        agent_id=agent,
        team=team,
        created_at=at(created),
        assigned_at=None if assigned is None else at(assigned),
        closed_at=None if closed is None else at(closed),
    )


def visitor(seconds: float) -> Message:
    return Message("visitor", None, at(seconds))


def agent(seconds: float, who: str = "ann") -> Message:
    return Message("agent", who, at(seconds))


def order(
    oid: str,
    seconds: float,
    value: str = "10.00",
    currency: str = "EUR",
    visitor_id: str = "v1",
    reported_by: str = "server",
    over_cap: bool = False,
) -> Order:
    return Order(oid, visitor_id, at(seconds), Decimal(value), currency, reported_by, over_cap)


# ---- periods -----------------------------------------------------------------------------------


def test_the_default_period_is_the_last_seven_days_including_today() -> None:
    period = parse_period(None, None, today=date(2025, 3, 10))
    assert (period.first_day, period.last_day) == (date(2025, 3, 4), date(2025, 3, 10))
    assert period.days == 7
    assert period.start == datetime(2025, 3, 4, tzinfo=UTC)
    assert period.end == datetime(2025, 3, 11, tzinfo=UTC)
    assert period.to_dict() == {"from": "2025-03-04", "to": "2025-03-10"}


def test_only_from_runs_to_today_and_only_to_takes_seven_days_before() -> None:
    assert parse_period("2025-03-01", None, today=date(2025, 3, 10)).days == 10
    assert parse_period(None, "2025-01-31", today=date(2025, 3, 10)).first_day == date(2025, 1, 25)


@pytest.mark.parametrize(
    ("first", "last", "field", "words"),
    [
        ("2025-03-10", "2025-03-01", "to", "before"),
        ("2024-01-01", "2025-03-10", "to", "at most 366"),
        ("yesterday", None, "from", "YYYY-MM-DD"),
        (None, "2025-13-01", "to", "YYYY-MM-DD"),
    ],
)
def test_bad_periods_say_which_parameter(
    first: str | None, last: str | None, field: str, words: str
) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(first, last, today=date(2025, 3, 10))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_a_one_day_period_and_a_full_366_day_period_are_fine() -> None:
    assert parse_period("2025-03-10", "2025-03-10", today=date(2025, 3, 10)).days == 1
    assert parse_period("2024-01-01", "2024-12-31", today=date(2025, 3, 10)).days == 366


# ---- first response and response times -----------------------------------------------------------


def test_first_response_counts_from_the_assignment() -> None:
    queued = conv(created=0, assigned=60)
    messages = [visitor(0), agent(90)]
    assert first_response_s(queued, messages) == 30.0


def test_first_response_counts_from_creation_when_assigned_at_once_or_never_stamped() -> None:
    assert first_response_s(conv(assigned=None), [visitor(1), agent(45)]) == 45.0
    assert first_response_s(conv(assigned=0), [agent(12)]) == 12.0


def test_no_agent_reply_means_no_first_response() -> None:
    assert first_response_s(conv(), [visitor(1), visitor(5)]) is None
    assert first_response_s(conv(agent=None), [agent(5)]) is None


def test_first_response_is_the_holders_own_after_a_transfer() -> None:
    moved = conv(agent="ben", created=0, assigned=100)
    messages = [visitor(0), agent(10, "ann"), visitor(50), agent(130, "ben")]
    assert first_response_s(moved, messages) == 30.0


def test_a_run_of_visitor_messages_is_one_wait_from_its_first_message() -> None:
    waits = response_waits(
        conv(), [visitor(0), visitor(5), agent(20), agent(25), visitor(100), agent(160)]
    )
    assert [(w.agent_id, w.seconds) for w in waits] == [("ann", 20.0), ("ann", 60.0)]


def test_queue_time_is_not_the_holders_response_time() -> None:
    queued = conv(created=0, assigned=300)
    waits = response_waits(queued, [visitor(0), agent(310)])
    assert [w.seconds for w in waits] == [10.0]


def test_a_wait_never_answered_counts_nowhere_and_agent_first_lines_are_no_reply() -> None:
    assert response_waits(conv(), [agent(1), visitor(5)]) == []
    assert response_waits(conv(), []) == []


def test_the_previous_agent_gets_their_own_waits_after_a_transfer() -> None:
    moved = conv(agent="ben", created=0, assigned=100)
    waits = response_waits(moved, [visitor(0), agent(10, "ann"), visitor(50), agent(130, "ben")])
    assert [(w.agent_id, w.seconds) for w in waits] == [("ann", 10.0), ("ben", 30.0)]


# ---- load ----------------------------------------------------------------------------------------


def test_load_is_the_time_average_and_the_peak_of_open_chats() -> None:
    load = concurrent_load([(at(0), at(50)), (at(25), at(75))], at(0), at(100))
    # 25 s with one, 25 s with two, 25 s with one, 25 s with none
    assert load.mean == pytest.approx(1.0)
    assert load.busy_mean == pytest.approx(100 / 75)
    assert load.max == 2


def test_chats_open_across_the_period_boundary_are_clipped() -> None:
    load = concurrent_load([(at(-500), at(50)), (at(90), None)], at(0), at(100))
    assert load.mean == pytest.approx(0.6)  # 50 s + 10 s (still open, up to the end) over 100 s
    assert load.max == 1


def test_a_chat_closing_as_another_opens_is_not_two_at_once() -> None:
    assert concurrent_load([(at(0), at(10)), (at(10), at(20))], at(0), at(20)).max == 1


def test_load_with_nothing_or_an_empty_period_is_zero() -> None:
    assert concurrent_load([], at(0), at(100)).max == 0
    empty = concurrent_load([(at(0), at(10))], at(5), at(5))
    assert (empty.mean, empty.busy_mean, empty.max) == (0.0, 0.0, 0)
    outside = concurrent_load([(at(200), at(300))], at(0), at(100))
    assert outside.max == 0


# ---- orders --------------------------------------------------------------------------------------


def test_an_order_counts_from_the_chats_start_to_the_window_after_its_end() -> None:
    chat = conv(created=0, closed=3600)
    now = at(30 * 86400)
    assert influenced(order("o", 10), chat, window=WEEK, now=now)  # during the chat
    assert influenced(order("o", 3600 + 7 * 86400), chat, window=WEEK, now=now)  # last moment
    assert not influenced(order("o", 3601 + 7 * 86400), chat, window=WEEK, now=now)
    assert not influenced(order("o", -1), chat, window=WEEK, now=now)  # before the chat
    assert not influenced(order("o", 10, visitor_id="v2"), chat, window=WEEK, now=now)


def test_an_open_chat_influences_until_the_window_after_now() -> None:
    chat = conv(created=0, closed=None)
    assert influenced(order("o", 86400), chat, window=WEEK, now=at(86400))


def test_a_chat_without_an_agent_influences_nothing() -> None:
    assert not influenced(order("o", 10), conv(agent=None), window=WEEK, now=at(100))


def test_one_order_is_credited_once_per_agent_and_team_and_to_each_agent() -> None:
    chats = [
        conv("c1", agent="ann", team="sales", created=0, closed=100),
        conv("c2", agent="ann", team="sales", created=200, closed=300),
        conv("c3", agent="ben", team="support", created=400, closed=500),
        conv("c4", agent="cid", visitor="v9", created=0, closed=100),
    ]
    [item] = attribute([order("o1", 600)], chats, window=WEEK, now=at(1000))
    assert item.agents == {"ann", "ben"}
    assert item.teams == {"sales", "support"}
    assert item.assisted


def test_the_same_order_twice_is_one_order() -> None:
    items = attribute([order("o1", 10), order("o1", 10)], [conv()], window=WEEK, now=at(100))
    assert len(items) == 1


def test_several_orders_and_one_outside_the_window() -> None:
    chats = [conv(created=0, closed=100)]
    orders = [order("o1", 50), order("o2", 500, "5.50"), order("o3", 100 + 8 * 86400)]
    items = attribute(orders, chats, window=WEEK, now=at(30 * 86400))
    assert [item.assisted for item in items] == [True, True, False]


def test_assisted_share_is_per_currency_and_never_mixes_them() -> None:
    chats = [conv(visitor="v1", created=0, closed=10)]
    orders = [
        order("o1", 5, "100.00", "EUR", "v1"),
        order("o2", 5, "50.00", "EUR", "v2"),
        order("o3", 5, "30.00", "SEK", "v1"),
        order("o4", 5, "70.00", "SEK", "v3"),
    ]
    share = assisted_share(attribute(orders, chats, window=WEEK, now=at(100)))
    assert (share.orders, share.orders_assisted) == (4, 2)
    data = share.to_dict()
    assert data["orders_share"] == 0.5
    eur, sek = data["currencies"]
    assert eur == {
        "currency": "EUR",
        "orders": 2,
        "orders_assisted": 1,
        "orders_share": 0.5,
        "revenue": 150.0,
        "revenue_assisted": 100.0,
        "revenue_share": pytest.approx(2 / 3),
    }
    assert (sek["revenue"], sek["revenue_assisted"], sek["revenue_share"]) == (100.0, 30.0, 0.3)


def test_no_orders_gives_no_share_rather_than_zero() -> None:
    data = assisted_share([]).to_dict()
    assert data == {"orders": 0, "orders_assisted": 0, "orders_share": None, "currencies": []}
    assert ratio(0, 0) is None
    assert ratio(Decimal(0), Decimal(0)) is None
    assert ratio(1, 4) == 0.25


def test_a_missing_currency_is_its_own_group() -> None:
    assert Order.currency_of(None) == NO_CURRENCY
    assert Order.currency_of(" eur ") == "EUR"


# ---- the per-agent and per-team report ------------------------------------------------------


def _period() -> Period:
    return Period(date(2025, 3, 10), date(2025, 3, 10))  # 2025-03-10 00:00 .. 03-11 00:00


def test_the_agents_report_puts_it_all_together() -> None:
    report = Report("agent", _period(), now=datetime(2025, 3, 12, tzinfo=UTC))
    report.group("cid")  # an agent with nothing to show still has a row
    report.add_conversation(
        conv("c1", agent="ann", created=0, assigned=0, closed=600),
        [visitor(0), agent(30), visitor(100), agent(110)],
    )
    report.add_conversation(
        conv("c2", agent="ann", visitor="v2", created=300, assigned=300, closed=900),
        [visitor(300), agent(400)],
    )
    report.add_conversation(conv("c3", agent="ben", visitor="v3", created=0, closed=60), [])
    orders = [order("o1", 1000, "20.00", "EUR", "v1"), order("o2", 1000, "5.00", "SEK", "v2")]
    report.add_orders(attribute(orders, [], window=WEEK, now=at(2000)))  # nobody's
    report.add_orders(
        attribute(
            orders,
            [conv("c1", agent="ann", closed=600), conv("c2", agent="ann", visitor="v2")],
            window=WEEK,
            now=at(2000),
        )
    )
    rows = {row["agent"]: row for row in report.rows()}
    ann = rows["ann"]
    assert ann["conversations"] == 2
    assert ann["unanswered"] == 0
    assert ann["first_response_median_s"] == 65.0  # 30 and 100
    assert ann["first_response_mean_s"] == 65.0
    assert ann["response_mean_s"] == pytest.approx((30 + 10 + 100) / 3, abs=1e-3)
    assert ann["responses"] == 3
    assert ann["load_max"] == 2
    assert ann["load_mean"] == pytest.approx(round(1200 / 86400, 4))
    assert ann["load_busy_mean"] == pytest.approx(round(1200 / 900, 4))
    assert ann["orders"] == 2
    assert ann["revenue"] == {"EUR": 20.0, "SEK": 5.0}
    ben = rows["ben"]
    assert (ben["conversations"], ben["unanswered"], ben["first_response_median_s"]) == (1, 1, None)
    assert ben["response_mean_s"] is None
    assert rows["cid"]["conversations"] == 0
    assert rows["cid"]["revenue"] == {}
    assert currencies_of(report.rows()) == ["EUR", "SEK"]
    assert [row["agent"] for row in report.rows(lambda key: key == "ben")] == ["ben"]


def test_a_chat_started_before_the_period_adds_load_but_is_not_counted() -> None:
    period = _period()
    report = Report("agent", period, now=datetime(2025, 3, 12, tzinfo=UTC))
    start = period.start - timedelta(hours=1)
    early = Conversation(
        "c0", "v1", "ann", "sales", start, start, period.start + timedelta(hours=6)
    )
    reply_inside = Message("agent", "ann", period.start + timedelta(minutes=1))
    report.add_conversation(
        early, [Message("visitor", None, period.start - timedelta(minutes=1)), reply_inside]
    )
    [row] = report.rows()
    assert row["conversations"] == 0
    assert row["first_response_median_s"] is None
    assert row["responses"] == 1  # its reply fell inside the period
    assert row["load_mean"] == pytest.approx(0.25)
    assert row["load_max"] == 1


def test_the_period_ends_now_while_it_lasts() -> None:
    period = _period()
    now = period.start + timedelta(hours=12)
    report = Report("agent", period, now=now)
    report.add_conversation(
        Conversation("c", "v", "ann", "sales", period.start, period.start, None), []
    )
    assert report.rows()[0]["load_mean"] == 1.0  # open the whole half day so far


def test_the_teams_report_groups_by_the_conversations_team() -> None:
    report = Report("team", _period(), now=datetime(2025, 3, 12, tzinfo=UTC))
    report.add_conversation(conv("c1", agent="ann", team="sales", closed=100), [agent(10)])
    report.add_conversation(
        conv("c2", agent="ben", team="sales", visitor="v2", closed=100), [agent(20, "ben")]
    )
    report.add_conversation(conv("c3", agent="ann", team="support", visitor="v3"), [])
    report.add_conversation(conv("c4", agent=None, team="support", visitor="v4"), [])
    items = attribute(
        [order("o1", 50, visitor_id="v1"), order("o2", 60, visitor_id="v2")],
        [conv("c1", agent="ann", team="sales"), conv("c2", agent="ben", visitor="v2")],
        window=WEEK,
        now=at(100),
    )
    report.add_orders(items)
    rows = {row["team"]: row for row in report.rows()}
    assert rows["sales"]["conversations"] == 2
    assert rows["sales"]["load_max"] == 2
    assert rows["sales"]["first_response_mean_s"] == 15.0
    assert rows["sales"]["orders"] == 2
    assert rows["sales"]["revenue"] == {"EUR": 20.0}
    assert rows["support"]["conversations"] == 1  # the chat without an agent is nobody's


# ---- assignment history: a transfer keeps the first agent's figures ----------------------------


def _transferred(*, to_team: str = "sales") -> Conversation:
    """Anna holds it from 0 and answers in 5 s; at 60 it goes to Ben, who answers at 70; the
    visitor's last message is answered by Ben; closed at 300."""
    return Conversation(
        conversation_id="c1",
        visitor_id="v1",
        agent_id="ben",
        team=to_team,
        created_at=at(0),
        assigned_at=at(60),
        closed_at=at(300),
        assignments=(
            Assignment("ann", "sales", at(0), at(60)),
            Assignment("ben", to_team, at(60), at(300)),
        ),
    )


TRANSFER_MESSAGES = [visitor(0), agent(5, "ann"), visitor(65), agent(70, "ben")]


def test_a_transfer_after_anna_answered_keeps_her_first_response_and_gives_ben_his() -> None:
    report = Report("agent", _period(), now=datetime(2025, 3, 12, tzinfo=UTC))
    report.add_conversation(_transferred(), TRANSFER_MESSAGES)
    rows = {row["agent"]: row for row in report.rows()}
    assert (rows["ann"]["conversations"], rows["ann"]["unanswered"]) == (1, 0)
    assert rows["ann"]["first_response_median_s"] == 5.0
    assert (rows["ben"]["conversations"], rows["ben"]["unanswered"]) == (1, 0)
    assert rows["ben"]["first_response_median_s"] == 10.0  # from his assignment at 60
    # each holds it for their stint only: both count in load
    assert rows["ann"]["load_max"] == rows["ben"]["load_max"] == 1
    assert rows["ann"]["load_mean"] == pytest.approx(round(60 / 86400, 4))
    assert rows["ben"]["load_mean"] == pytest.approx(round(240 / 86400, 4))
    assert (rows["ann"]["response_mean_s"], rows["ben"]["response_mean_s"]) == (5.0, 5.0)


def test_a_stint_without_its_agents_reply_is_unanswered_even_if_the_next_agent_replied() -> None:
    report = Report("agent", _period(), now=datetime(2025, 3, 12, tzinfo=UTC))
    report.add_conversation(_transferred(), [visitor(0), agent(70, "ben")])
    rows = {row["agent"]: row for row in report.rows()}
    assert (rows["ann"]["unanswered"], rows["ann"]["first_response_median_s"]) == (1, None)
    assert rows["ben"]["first_response_median_s"] == 10.0


def test_a_team_counts_a_transfer_inside_it_once_and_a_transfer_out_for_each_team() -> None:
    report = Report("team", _period(), now=datetime(2025, 3, 12, tzinfo=UTC))
    report.add_conversation(_transferred(), TRANSFER_MESSAGES)
    [sales] = report.rows()
    assert (sales["conversations"], sales["first_response_median_s"]) == (1, 5.0)
    assert sales["load_max"] == 1
    assert sales["load_mean"] == pytest.approx(round(300 / 86400, 4))

    report = Report("team", _period(), now=datetime(2025, 3, 12, tzinfo=UTC))
    report.add_conversation(_transferred(to_team="support"), TRANSFER_MESSAGES)
    rows = {row["team"]: row for row in report.rows()}
    assert (rows["sales"]["conversations"], rows["sales"]["first_response_median_s"]) == (1, 5.0)
    assert rows["support"]["conversations"] == 1
    assert rows["support"]["first_response_median_s"] == 10.0
    assert rows["support"]["responses"] == 1  # Ben's reply is his team's


def test_an_order_after_a_transfer_is_credited_to_both_agents_and_their_teams() -> None:
    [item] = attribute(
        [order("o1", 400)], [_transferred(to_team="support")], window=WEEK, now=at(500)
    )
    assert item.agents == {"ann", "ben"}
    assert item.teams == {"sales", "support"}


# ---- who reported the order --------------------------------------------------------------------


def test_the_browsers_orders_are_reported_apart_and_never_as_revenue() -> None:
    chats = [conv("c1", closed=600)]
    orders = [
        order("o-server", 700, "120.00"),
        # the probe's claim through the public snippet endpoint
        order("o-probe", 700, "999999999", reported_by="browser"),
        order("o-flagged", 800, "50000", reported_by="browser", over_cap=True),
        order("o-unknown", 900, "30.00", reported_by="browser", visitor_id="v2"),
    ]
    figures = assisted_report_figures(attribute(orders, chats, window=WEEK, now=at(1000)))
    assert (figures["orders"], figures["orders_assisted"]) == (1, 1)
    assert figures["currencies"] == [
        {
            "currency": "EUR",
            "orders": 1,
            "orders_assisted": 1,
            "orders_share": 1.0,
            "revenue": 120.0,
            "revenue_assisted": 120.0,
            "revenue_share": 1.0,
        }
    ]
    browser = figures["browser"]
    assert (browser["orders"], browser["orders_assisted"], browser["over_cap"]) == (2, 1, 1)
    (eur,) = browser["currencies"]
    assert (eur["revenue"], eur["revenue_assisted"]) == (999_999_999 + 30.0, 999_999_999.0)


def test_the_agents_report_credits_only_the_servers_orders() -> None:
    report = Report("agent", _period(), now=datetime(2025, 3, 12, tzinfo=UTC))
    chats = [conv("c1", closed=600)]
    orders = [order("o1", 700, "20.00"), order("o2", 700, "999999999", reported_by="browser")]
    report.add_orders(attribute(orders, chats, window=WEEK, now=at(1000)))
    (row,) = report.rows()
    assert (row["orders"], row["revenue"]) == (1, {"EUR": 20.0})


def test_the_servers_report_of_an_order_wins_over_the_browsers_copy_of_it() -> None:
    copies = [order("o1", 10, "5.00", reported_by="browser"), order("o1", 20, "25.00")]
    (only,) = attribute(copies, [], window=WEEK, now=at(100))
    assert (only.order.reported_by, only.order.value) == ("server", Decimal("25.00"))
