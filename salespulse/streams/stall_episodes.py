"""Stall episodes (contract §6): when an open deal is idle, stuck or overdue, as a pure function of its history.

Given a deal's history (its deal events in CRM order and the times of the visits, calls and
feedback linked to it), the rules and "now", :func:`episodes` returns every stall episode the
deal has had: when each started, when it turned critical, when and how it ended. Every time
is an *event* time — a threshold crossing or the event that ended the episode — never the
moment the pipeline looked, so the same input gives the same alerts however it is batched,
replayed or restarted.

- **idle**: no linked activity (a deal event counts) for more than ``idle_days[stage]``; ends
  with the next activity.
- **stuck**: in the same stage for more than ``stage_days[stage]``; ends with a stage change
  or a close.
- **overdue**: open after its expected_close_date (from midnight after that date, in the
  reporting time zone); ends with a close or an expected_close_date that is no longer past.

Severity: warning past the threshold, critical past twice the threshold (overdue: more than
``overdue_critical_days`` past the date).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from salespulse.config import StallRules
from salespulse.schemas.events import OPEN_STAGES


@dataclass(frozen=True)
class DealEvent:
    """One deal event: the deal's state as of ``at``."""

    at: datetime
    stage: str
    expected_close_date: date | None = None


@dataclass(frozen=True)
class DealHistory:
    deal_id: str
    events: list[DealEvent]  # in CRM order: occurred_at, then delivery order
    activities: list[datetime] = field(default_factory=list)  # linked visits, calls, feedback


@dataclass(frozen=True)
class Transition:
    state: str  # opened | escalated | resolved
    at: datetime
    severity: str  # after the transition
    resolved_by: str | None = None


@dataclass(frozen=True)
class Episode:
    deal_id: str
    reason: str  # idle | stuck | overdue
    stalled_since: datetime
    threshold_days: int
    critical_at: datetime | None  # the moment it becomes critical, if it lasts that long
    ended_at: datetime | None  # None while it lasts
    resolved_by: str | None
    stage: str  # the stage while it lasted (at its start)

    @property
    def alert_id(self) -> str:
        """Stable identity of the episode: the deal, the rule and when it started to hold."""
        text = f"{self.deal_id}|{self.reason}|{self.stalled_since.astimezone(UTC).isoformat()}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def transitions(self, now: datetime) -> list[Transition]:
        """The transitions that have happened by ``now``, in order."""
        if now <= self.stalled_since:
            return []
        happened = [Transition("opened", self.stalled_since, "warning")]
        horizon = now if self.ended_at is None else min(now, self.ended_at)
        critical = self.critical_at is not None and self.critical_at < horizon
        if critical:
            assert self.critical_at is not None
            happened.append(Transition("escalated", self.critical_at, "critical"))
        if self.ended_at is not None and self.ended_at <= now:
            severity = "critical" if critical else "warning"
            happened.append(Transition("resolved", self.ended_at, severity, self.resolved_by))
        return happened

    def is_open(self, now: datetime) -> bool:
        return self.stalled_since < now and (self.ended_at is None or self.ended_at > now)

    def severity(self, now: datetime) -> str:
        return "critical" if self.critical_at is not None and self.critical_at < now else "warning"


def _closing(stage: str) -> str | None:
    return stage if stage in ("won", "lost") else None


def _idle(history: DealHistory, rules: StallRules, now: datetime) -> Iterable[Episode]:
    events = history.events
    created = events[0].at
    # Every moment something happened to the deal, with what it was: (time, event index or None).
    moments = sorted(
        [(event.at, index) for index, event in enumerate(events)]
        + [(at, None) for at in history.activities if at >= created],
        key=lambda moment: (moment[0], -1 if moment[1] is None else moment[1]),
    )
    state_index = 0
    for position, (at, index) in enumerate(moments):
        if index is not None:
            state_index = index
        stage = events[state_index].stage
        if stage not in OPEN_STAGES:
            continue
        days = rules.idle_days[stage]
        start = at + timedelta(days=days)
        following = moments[position + 1] if position + 1 < len(moments) else None
        end = following[0] if following else None
        if (end if end is not None else now) <= start:
            continue
        resolved_by = None
        if following is not None:
            next_index = following[1]
            if next_index is None:
                resolved_by = "activity"
            else:
                next_stage = events[next_index].stage
                resolved_by = _closing(next_stage) or ("stage_change" if next_stage != stage else "activity")
        yield Episode(
            history.deal_id, "idle", start, days, at + timedelta(days=2 * days), end, resolved_by, stage
        )


def _stuck(history: DealHistory, rules: StallRules, now: datetime) -> Iterable[Episode]:
    events = history.events
    run_start = 0
    for index in range(1, len(events) + 1):
        if index < len(events) and events[index].stage == events[run_start].stage:
            continue
        stage = events[run_start].stage
        if stage in OPEN_STAGES:
            days = rules.stage_days[stage]
            entered = events[run_start].at
            start = entered + timedelta(days=days)
            end = events[index].at if index < len(events) else None
            if (end if end is not None else now) > start:
                resolved_by = None if end is None else (_closing(events[index].stage) or "stage_change")
                yield Episode(
                    history.deal_id,
                    "stuck",
                    start,
                    days,
                    entered + timedelta(days=2 * days),
                    end,
                    resolved_by,
                    stage,
                )
        run_start = index


def _overdue(history: DealHistory, rules: StallRules, now: datetime) -> Iterable[Episode]:
    zone = ZoneInfo(rules.timezone)
    events = history.events
    critical_after = timedelta(days=rules.overdue_critical_days)
    episode: dict[str, object] | None = None  # the episode being built: since, critical_at, stage
    for index, event in enumerate(events):
        end = events[index + 1].at if index + 1 < len(events) else None
        holds_from = None
        if event.stage in OPEN_STAGES and event.expected_close_date is not None:
            past = datetime.combine(event.expected_close_date + timedelta(days=1), time(), zone).astimezone(
                UTC
            )
            holds_from = max(event.at, past)
            if end is not None and holds_from >= end:
                holds_from = None  # the date only passes after this state ended
            # (The current state has not ended: whether its episode shows yet is decided below.)
        if holds_from is None:
            if episode is not None:  # this event ended it: a close or a date no longer past
                yield _overdue_episode(
                    history.deal_id, episode, event.at, _closing(event.stage) or "rule_cleared"
                )
                episode = None
            continue
        if episode is not None and holds_from > event.at:
            # The new date is in the future at this event: the previous episode ended here.
            yield _overdue_episode(history.deal_id, episode, event.at, "rule_cleared")
            episode = None
        assert event.expected_close_date is not None
        critical = max(holds_from, past + critical_after)
        if episode is None:
            episode = {"since": holds_from, "critical_at": None, "stage": event.stage}
        if episode["critical_at"] is None and critical < (end if end is not None else now):
            episode["critical_at"] = critical
    if episode is not None:
        lasting = _overdue_episode(history.deal_id, episode, None, None)
        if lasting.stalled_since < now:  # one that starts at or after "now" has not begun yet
            yield lasting


def _overdue_episode(deal_id: str, built: dict[str, object], end: datetime | None, by: str | None) -> Episode:
    since = built["since"]
    critical_at = built["critical_at"]
    assert isinstance(since, datetime) and (critical_at is None or isinstance(critical_at, datetime))
    return Episode(deal_id, "overdue", since, 0, critical_at, end, by, str(built["stage"]))


def episodes(history: DealHistory, rules: StallRules, now: datetime) -> list[Episode]:
    """Every stall episode of the deal up to ``now``, ordered by start time then rule."""
    if not history.events:
        return []
    found = [*_idle(history, rules, now), *_stuck(history, rules, now), *_overdue(history, rules, now)]
    return sorted(found, key=lambda episode: (episode.stalled_since, episode.reason))
