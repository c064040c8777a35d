"""The stall monitor's reconciliation with late data (issue 12), on hand-made histories.

Each case records what the monitor would have notified on an incomplete history, then hands
:func:`reconcile` the complete one; the expected transitions are worked out in the comments
from contract §6's defaults (UTC).
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from salespulse.config import StallRules
from salespulse.schemas.alerts import StallAlert
from salespulse.streams.stall_episodes import DealEvent, DealHistory, episodes
from salespulse.streams.stall_monitor import reconcile

RULES = StallRules()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INFO = {"rep_id": "r1", "team_id": "t1", "region_id": "east", "customer_id": "c1", "stage": "x", "amount": 10}
SEEN = datetime(2030, 1, 1, tzinfo=UTC)  # wall clock of the monitor: not part of any expectation


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Log:
    """The alert log of one deal, as the monitor keeps it: every transition, by alert, in order."""

    def __init__(self) -> None:
        self.by_alert: dict[str, list[StallAlert]] = {}
        self.ids: list[str] = []

    def round(self, history: DealHistory, now: datetime) -> list[tuple[str, str, datetime, str, str | None]]:
        new = reconcile(episodes(history, RULES, now), self.by_alert, now, INFO, SEEN, "USD")
        for alert in new:
            self.by_alert.setdefault(alert.alert_id, []).append(alert)
            self.ids.append(alert.transition_id)
        return [(a.reason, a.state, a.at, a.severity, a.resolved_by) for a in new]

    def latest(self) -> set[tuple[str, str, str]]:
        return {(a[-1].reason, a[-1].state, a[-1].severity) for a in self.by_alert.values()}


def test_in_order_history_is_notified_at_event_times() -> None:
    # qualified: idle after 10 days (day 10), critical after 20 (day 20).
    log = Log()
    history = DealHistory("d", [DealEvent(day(0), "qualified")])
    assert log.round(history, day(25)) == [
        ("idle", "opened", day(10), "warning", None),
        ("idle", "escalated", day(20), "critical", None),
        ("stuck", "opened", day(21), "warning", None),
    ]
    assert log.round(history, day(25)) == []  # nothing twice


def test_a_late_activity_resolves_the_escalated_episode_and_opens_the_true_one() -> None:
    # The example: qualified since day 0, "now" day 29. Without the call of day 11 the deal
    # is idle since day 10 and critical since day 20. With it, that episode ended on day 11 before
    # turning critical (resolved by activity, warning), and idle holds again from day 21, a
    # warning until day 31. Stuck (21 days) holds from day 21: a warning until day 42.
    log = Log()
    log.round(DealHistory("d", [DealEvent(day(0), "qualified")]), day(29))
    late = DealHistory("d", [DealEvent(day(0), "qualified")], activities=[day(11)])
    assert log.round(late, day(29)) == [
        ("idle", "resolved", day(11), "warning", "activity"),
        ("idle", "opened", day(21), "warning", None),
    ]
    open_alerts = {(r, s) for r, state, s in log.latest() if state != "resolved"}
    assert open_alerts == {("idle", "warning"), ("stuck", "warning")}
    assert len(log.ids) == len(set(log.ids))


def test_an_alert_that_never_held_is_resolved_by_late_data() -> None:
    # negotiation: idle after 5 days. Seen at day 6 with no activity: opened at day 5. A call of
    # day 4 arrives: idle would only start on day 9, so the episode alerted never held.
    log = Log()
    assert log.round(DealHistory("d", [DealEvent(day(0), "negotiation")]), day(6)) == [
        ("idle", "opened", day(5), "warning", None)
    ]
    late = DealHistory("d", [DealEvent(day(0), "negotiation")], activities=[day(4)])
    assert log.round(late, day(6)) == [("idle", "resolved", day(6), "warning", "late_data")]
    assert log.latest() == {("idle", "resolved", "warning")}


def test_a_late_state_with_a_later_date_deescalates_then_escalates_again() -> None:
    # proposal since Mar 1 12:00, expected close Mar 2: overdue from Mar 3 00:00, critical from
    # Mar 10 00:00. Seen at Mar 10 12:00 (day 9): overdue opened and escalated; idle (7 days)
    # opened on day 7.
    first = DealEvent(day(0), "proposal", date(2026, 3, 2))
    log = Log()
    assert log.round(DealHistory("d", [first]), day(9)) == [
        ("overdue", "opened", datetime(2026, 3, 3, tzinfo=UTC), "warning", None),
        ("overdue", "escalated", datetime(2026, 3, 10, tzinfo=UTC), "critical", None),
        ("idle", "opened", day(7), "warning", None),
    ]
    # A late update of Mar 4 12:00 moved the date to Mar 3, already past: the episode goes on
    # (same start, same alert), but overdue by more than 7 days now means from Mar 11 00:00, so
    # at day 9 it is a warning: deescalated at "now". The update is activity: idle holds only
    # from day 3 + 7 = day 10, so the idle alert never held: resolved by late data.
    late = DealHistory("d", [first, DealEvent(day(3), "proposal", date(2026, 3, 3))])
    assert log.round(late, day(9)) == [
        ("overdue", "deescalated", day(9), "warning", None),
        ("idle", "resolved", day(9), "warning", "late_data"),
    ]
    # Mar 11 00:00 passed (day 10 is Mar 11 12:00): critical again, a second escalation with its
    # own id. Idle starts exactly at day 10: "more than 7 days" does not hold yet.
    assert log.round(late, day(10)) == [
        ("overdue", "escalated", datetime(2026, 3, 11, tzinfo=UTC), "critical", None)
    ]
    assert len(log.ids) == len(set(log.ids))
    overdue = next(alerts for alerts in log.by_alert.values() if alerts[0].reason == "overdue")
    assert [(a.state, a.sequence, a.previous_severity) for a in overdue] == [
        ("opened", 1, None),
        ("escalated", 2, "warning"),
        ("deescalated", 3, "critical"),
        ("escalated", 4, "warning"),
    ]
    assert overdue[-1].transition_id.endswith(":escalated:4")
    assert overdue[0].amount == Decimal(10)


def test_an_alert_withdrawn_by_late_data_opens_again_when_later_data_brings_its_episode_back() -> None:
    # prospecting, expected close Mar 1: overdue from Mar 2 00:00 (UTC), critical from Mar 9.
    # Seen first: one update of day 45 (Apr 15 12:00) with that date: overdue since the update,
    # critical at once (more than 7 days past the date).
    since = day(45)
    update = DealEvent(since, "prospecting", date(2026, 3, 1))
    log = Log()

    def overdue(history: DealHistory) -> list[tuple[str, str, datetime, str, str | None]]:
        return [t for t in log.round(history, day(51)) if t[0] == "overdue"]

    assert overdue(DealHistory("d", [update])) == [
        ("overdue", "opened", since, "warning", None),
        ("overdue", "escalated", since, "critical", None),
    ]
    # A late creation of day 0 with the same date: the episode reaches back to Mar 2 (a new
    # alert, critical from Mar 9); the one alerted never held as such: withdrawn.
    created = DealEvent(day(0), "prospecting", date(2026, 3, 1))
    march_2 = datetime(2026, 3, 2, tzinfo=UTC)
    assert overdue(DealHistory("d", [created, update])) == [
        ("overdue", "opened", march_2, "warning", None),
        ("overdue", "escalated", datetime(2026, 3, 9, tzinfo=UTC), "critical", None),
        ("overdue", "resolved", day(51), "critical", "late_data"),
    ]
    # A later-arriving update of day 3 without a date breaks the run: the Mar 2 episode ended on
    # day 3 (before turning critical), and the episode of day 45 is the truth again: its alert,
    # withdrawn a round ago, opens again (its own transition ids) and escalates.
    cleared = DealEvent(day(3), "prospecting")
    assert overdue(DealHistory("d", [created, cleared, update])) == [
        ("overdue", "resolved", day(3), "warning", "rule_cleared"),
        ("overdue", "opened", since, "warning", None),
        ("overdue", "escalated", since, "critical", None),
    ]
    assert ("overdue", "escalated", "critical") in log.latest()
    assert len(log.ids) == len(set(log.ids))
