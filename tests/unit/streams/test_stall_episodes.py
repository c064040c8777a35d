"""Stall rules on hand-made deal histories: every expected time is worked out in the comments."""

from datetime import UTC, date, datetime, timedelta

from salespulse.config import StallRules
from salespulse.streams.stall_episodes import DealEvent, DealHistory, episodes

RULES = StallRules(timezone="Asia/Shanghai")
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def summary(
    history: DealHistory, now: datetime
) -> list[tuple[str, list[tuple[str, datetime, str, str | None]]]]:
    return [
        (episode.reason, [(t.state, t.at, t.severity, t.resolved_by) for t in episode.transitions(now)])
        for episode in episodes(history, RULES, now)
    ]


def test_idle_in_proposal_warns_then_escalates() -> None:
    # proposal: idle after 7 days (day 7), critical after 14 (day 14); stuck after 14 days too.
    history = DealHistory("d", [DealEvent(day(0), "proposal")])
    assert summary(history, day(10)) == [("idle", [("opened", day(7), "warning", None)])]
    assert summary(history, day(15)) == [
        ("idle", [("opened", day(7), "warning", None), ("escalated", day(14), "critical", None)]),
        ("stuck", [("opened", day(14), "warning", None)]),
    ]


def test_a_visit_resolves_idle_and_restarts_the_clock() -> None:
    # negotiation: idle after 5 days. Visit on day 6 resolves (opened day 5); idle again from day 11.
    history = DealHistory("d", [DealEvent(day(0), "negotiation")], activities=[day(6)])
    assert summary(history, day(12)) == [
        ("idle", [("opened", day(5), "warning", None), ("resolved", day(6), "warning", "activity")]),
        ("idle", [("opened", day(11), "warning", None)]),
    ]


def test_exactly_at_the_threshold_is_not_idle() -> None:
    history = DealHistory("d", [DealEvent(day(0), "negotiation")], activities=[day(5)])
    assert summary(history, day(5)) == []
    assert summary(history, day(10)) == []  # 5 days since the visit: not more than 5


def test_stage_change_resolves_stuck_and_idle_with_stage_change() -> None:
    # qualified: idle after 10, stuck after 21. Updates on days 9 and 18 keep it active;
    # moving to proposal on day 25 ends the stuck episode that began on day 21.
    events = [
        DealEvent(day(0), "qualified"),
        DealEvent(day(9), "qualified"),
        DealEvent(day(18), "qualified"),
        DealEvent(day(25), "proposal"),
    ]
    assert summary(DealHistory("d", events), day(26)) == [
        ("stuck", [("opened", day(21), "warning", None), ("resolved", day(25), "warning", "stage_change")]),
    ]


def test_won_and_lost_resolve_and_closed_deals_never_alert() -> None:
    won = DealHistory("w", [DealEvent(day(0), "negotiation"), DealEvent(day(12), "won")])
    # idle from day 5, critical after day 10, resolved by the win on day 12 (stuck at 14 never came).
    assert summary(won, day(60)) == [
        (
            "idle",
            [
                ("opened", day(5), "warning", None),
                ("escalated", day(10), "critical", None),
                ("resolved", day(12), "critical", "won"),
            ],
        )
    ]
    lost = DealHistory("l", [DealEvent(day(0), "prospecting", date(2026, 3, 2)), DealEvent(day(3), "lost")])
    # expected close 2026-03-02 Shanghai: overdue from 2026-03-03 00:00 +08 = day 1.666...
    overdue_from = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert summary(lost, day(60)) == [
        ("overdue", [("opened", overdue_from, "warning", None), ("resolved", day(3), "warning", "lost")])
    ]


def test_overdue_escalates_after_seven_days_and_a_new_date_clears_it() -> None:
    events = [
        DealEvent(day(0), "proposal", date(2026, 3, 1)),  # overdue from 03-02 00:00 +08 = 03-01 16:00Z
        DealEvent(day(5), "proposal", date(2026, 3, 1)),  # update: still overdue, same episode
        DealEvent(day(9), "proposal", date(2026, 4, 30)),  # new date in the future: cleared
    ]
    since = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    history = DealHistory("d", events)
    found = summary(history, day(10))
    assert found == [
        (
            "overdue",
            [
                ("opened", since, "warning", None),
                ("escalated", since + timedelta(days=7), "critical", None),
                ("resolved", day(9), "critical", "rule_cleared"),
            ],
        )
    ]


def test_an_update_at_now_that_keeps_a_passed_date_does_not_end_the_episode() -> None:
    # Overdue from 03-01 16:00Z (midnight after 03-01 in Shanghai). The update at "now" (the
    # event clock: the latest event) keeps the date: the episode goes on, it is not cleared.
    since = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    update = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    events = [
        DealEvent(datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "prospecting", date(2026, 3, 1)),
        DealEvent(update, "prospecting", date(2026, 3, 1)),
    ]
    history = DealHistory("d", events)
    assert summary(history, update) == [("overdue", [("opened", since, "warning", None)])]
    # Later, the same episode (same alert) turns critical 7 days after the date passed.
    assert summary(history, since + timedelta(days=8)) == [
        (
            "overdue",
            [("opened", since, "warning", None), ("escalated", since + timedelta(days=7), "critical", None)],
        )
    ]
    assert [e.alert_id for e in episodes(history, RULES, update)] == [
        e.alert_id for e in episodes(history, RULES, since + timedelta(days=8))
    ]


def test_a_single_update_at_now_with_a_passed_date_is_not_overdue_yet() -> None:
    # Its episode would start at the update itself, which is not before "now".
    now = datetime(2026, 3, 5, 0, 0, tzinfo=UTC)
    history = DealHistory("d", [DealEvent(now, "prospecting", date(2026, 3, 1))])
    assert summary(history, now) == []
    assert summary(history, now + timedelta(hours=1)) == [("overdue", [("opened", now, "warning", None)])]


def test_reopened_deal_is_watched_again() -> None:
    events = [DealEvent(day(0), "negotiation"), DealEvent(day(1), "won"), DealEvent(day(20), "negotiation")]
    # Won from day 1 to day 20: nothing. Reopened on day 20: idle from day 25.
    assert summary(DealHistory("d", events), day(26)) == [("idle", [("opened", day(25), "warning", None)])]


def test_alert_ids_are_stable_and_distinct() -> None:
    history = DealHistory("d", [DealEvent(day(0), "proposal")])
    first = [episode.alert_id for episode in episodes(history, RULES, day(20))]
    again = [episode.alert_id for episode in episodes(history, RULES, day(30))]
    assert first == again and len(set(first)) == 2
