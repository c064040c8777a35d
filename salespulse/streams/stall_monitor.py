"""The stall monitor: applies the stall rules (``streams.stall_episodes``) and emits alert transitions.

It runs inside the worker, on a timer and after every flush that brought new events. Each
round it re-examines only the deals that can have changed:

- deals with events ingested since its watermark (new activity, stage changes, closes);
- open deals whose rules hold at "now" but have no open alert yet (a threshold was crossed);
- deals with an open alert (it may have turned critical).

For these it recomputes the episodes from the deal's full history and reconciles each alert's
recorded lifecycle with them (:func:`reconcile`): it opens, escalates and resolves as the
history says and, when late data changed the history, deescalates an alert that is not critical
after all or resolves one that never held (``resolved_by = "late_data"``), so that the latest
state of every alert agrees with ``stalled_deals`` (computed from the deals' current state by
the view). New transitions go to the log (``published = 0``), to the alerts topic, then are
marked published. The gauge counts what ``stall_reasons`` (the view ``stalled_deals`` is built
on) holds now. Memory holds the open
alerts only, so it grows with stalled deals, not with events. With several workers, each
examines the deals whose hash falls in the partitions of the deals topic it is assigned.
"""

import asyncio
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client
from mode import Service

from salespulse.config import Settings, StallRules
from salespulse.kafka.consumers import read_topics
from salespulse.kafka.topics import Topics
from salespulse.schemas.alerts import StallAlert
from salespulse.sinks.clickhouse.client import connect
from salespulse.streams.metrics import Metrics
from salespulse.streams.stall_episodes import DealEvent, DealHistory, Episode, episodes

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 5_000
MIN_ROUND_GAP_SECONDS = 0.5  # rounds triggered by flushes: at most two a second
# While the ingest catches up on a backlog, a round sees a half-read history and examines most
# deals: rounds wait for the backlog, but never longer than this.
MAX_DEFERRAL_SECONDS = 300.0
# Rows written while a round reads the watermark may carry an earlier ingested_at: look back
# this far each round. Re-examining a deal is harmless.
WATERMARK_OVERLAP = timedelta(seconds=60)
LOG_COLUMNS = (*StallAlert.model_fields.keys(), "published", "version")
_STATE_ORDER = {"opened": 0, "escalated": 1, "deescalated": 2, "resolved": 3}


def deal_partition(deal_id: str, partitions: int) -> int:
    """Which partition's owner watches this deal (stable across processes and machines)."""
    return int.from_bytes(hashlib.blake2b(deal_id.encode(), digest_size=8).digest(), "big") % partitions


@dataclass
class OpenAlert:
    alert_id: str
    deal_id: str
    reason: str
    severity: str
    labels: dict[str, str]


@dataclass
class RoundResult:
    transitions: list[StallAlert] = field(default_factory=list)
    examined: int = 0
    watermark: datetime | None = None


class StallMonitor(Service):
    """Watches open deals and emits stall alert transitions (contract §6)."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        ready: asyncio.Event,
        owned_partitions: Callable[[], set[int] | None] = lambda: None,
        catching_up: Callable[[], bool] = lambda: False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.rules: StallRules = settings.stall_rules()
        self.topics = Topics.from_settings(settings)
        self.db = settings.clickhouse_database
        self._ready = ready  # set once the ingest service has migrated ClickHouse
        self._owned_partitions = owned_partitions  # None: every deal (a single worker)
        # While the worker catches up on a backlog every flush touches most deals: evaluating after
        # each one would redo the same work many times, so only the timer runs rounds then.
        self._catching_up = catching_up
        self._wake = asyncio.Event()
        self._client: Client | None = None
        self._producer: AIOKafkaProducer | None = None
        self.open_alerts: dict[str, OpenAlert] = {}
        self._watermark: datetime | None = None
        self._watermark_scope: frozenset[int] | None = None  # the partitions it was loaded for
        self._unconfirmed: list[StallAlert] = []  # recorded, not yet confirmed on the topic
        self.last_round: RoundResult | None = None
        # The latest read of stall_reasons: the gauge shows it.
        self._stalled_now: list[tuple[str, str, str, str, str, str]] | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    async def on_start(self) -> None:
        await self._ready.wait()
        self._client = await asyncio.to_thread(connect, self.settings)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.broker, client_id=f"{self.settings.app_id}-alerts", acks="all"
        )
        await self._producer.start()
        await asyncio.to_thread(self._load_state)
        await self._publish_unpublished()

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    def wake(self) -> None:
        """Ask for a round soon (called after each flush that wrote events)."""
        self._wake.set()

    @Service.task
    async def _rounds(self) -> None:
        interval = self.settings.stall_check_interval_seconds
        last_round = time.monotonic()
        next_tick = time.monotonic() + interval
        while not self.should_stop:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, next_tick - time.monotonic()))
            except TimeoutError:
                # The timer: look anyway, unless a backlog is being read (then within the bound).
                if self._catching_up() and time.monotonic() - last_round < MAX_DEFERRAL_SECONDS:
                    next_tick = time.monotonic() + interval
                    continue
            else:
                self._wake.clear()
                if self._catching_up():
                    continue  # the timer will come
                await asyncio.sleep(max(0.0, last_round + MIN_ROUND_GAP_SECONDS - time.monotonic()))
            last_round = time.monotonic()
            next_tick = last_round + interval
            try:
                await self.run_round()
            except Exception as error:  # ClickHouse or the broker away: the next round retries
                log.warning(
                    "stall monitor: round failed (%s: %s); retrying", type(error).__name__, str(error)[:300]
                )
                await self.sleep(min(interval, 5.0))

    async def run_round(self) -> RoundResult:
        """One evaluation: compute, record, publish. Returns what it emitted."""
        if self._unconfirmed:  # a previous round recorded transitions but could not publish them
            await self._emit(self._unconfirmed)
        result = await asyncio.to_thread(self._compute_round)
        if result.transitions:
            self._unconfirmed = result.transitions
            await self._emit(result.transitions)
        if result.watermark is not None:
            self._watermark = result.watermark
            await asyncio.to_thread(self._save_watermark)
        self._update_gauge()
        self.last_round = result
        return result

    # --- one round (runs in a thread: ClickHouse calls block) ------------------------------------
    def _compute_round(self) -> RoundResult:
        now = self._now()
        owned = self._owned_partitions()
        if now is None or owned == set():
            return RoundResult()  # no events yet, or no partitions assigned (a rebalance)
        scope = frozenset(owned) if owned is not None else frozenset(range(self.settings.topic_partitions))
        if scope != self._watermark_scope:
            self._watermark = self._load_watermark(scope)
            self._watermark_scope = scope
        high = self._scalar(f"SELECT max(ingested_at) FROM {self.db}.events")
        since = None if self._watermark is None else self._watermark - WATERMARK_OVERLAP
        self._stalled_now = self._stall_reasons()
        already = {alert.deal_id for alert in self.open_alerts.values()}
        candidates = (
            self._touched_deals(since)
            | ({row[0] for row in self._stalled_now} - already)  # a threshold crossed, no alert yet
            | already  # open alerts may escalate, end, or be contradicted by late data
        )
        candidates = {deal for deal in candidates if self._owns(deal)}
        result = RoundResult(examined=len(candidates))
        for chunk in _chunks(sorted(candidates), LOOKUP_CHUNK):
            result.transitions += self._transitions_for(chunk, now)
        result.transitions.sort(key=lambda t: (t.at, t.deal_id, t.reason, t.sequence))
        if result.transitions:
            self._record(result.transitions, published=False)
        result.watermark = _as_utc(high) if high is not None else None
        return result

    def _transitions_for(self, deal_ids: Sequence[str], now: datetime) -> list[StallAlert]:
        histories = self._histories(deal_ids)
        recorded = self._recorded_transitions(deal_ids)
        deals = self._deal_info(deal_ids)
        detected_at = datetime.now(UTC)
        emitted: list[StallAlert] = []
        for deal_id in deal_ids:
            info = deals.get(deal_id)
            history = histories.get(deal_id)
            if info is None or history is None:
                continue
            emitted += reconcile(
                episodes(history, self.rules, now),
                _alerts_by_id(recorded.get(deal_id, {})),
                now,
                info,
                detected_at,
                self.settings.reporting_currency,
            )
        return emitted

    # --- queries ---------------------------------------------------------------------------------
    def _now(self) -> datetime | None:
        if self.settings.clock == "wall":
            return datetime.now(UTC)
        latest = self._scalar(f"SELECT max(occurred_at) FROM {self.db}.events")
        # An empty table gives the epoch: no events, nothing to watch.
        return None if latest is None or _as_utc(latest).year < 1971 else _as_utc(latest)

    def _touched_deals(self, since: datetime | None) -> set[str]:
        where = "" if since is None else "AND ingested_at > {since:DateTime64(6, 'UTC')}"
        rows = self._rows(
            f"SELECT DISTINCT deal_id FROM {self.db}.events WHERE deal_id != '' {where}",
            {"since": since} if since else None,
        )
        return {row[0] for row in rows}

    def _stall_reasons(self) -> list[tuple[str, str, str, str, str, str]]:
        """What is stalled now, from the deals' current state: (deal, region, team, stage, reason, severity)."""
        rows = self._rows(
            f"SELECT deal_id, region_id, team_id, stage, reason, severity FROM {self.db}.stall_reasons"
        )
        return [(str(a), str(b), str(c), str(d), str(e), str(f)) for a, b, c, d, e, f in rows]

    def _histories(self, deal_ids: Sequence[str]) -> dict[str, DealHistory]:
        rows = self._rows(
            f"""SELECT deal_id, event_type, occurred_at, stage, expected_close_date
                FROM {self.db}.events_final WHERE deal_id IN {{ids:Array(String)}}
                ORDER BY deal_id, occurred_at, ingested_at, src_partition, src_offset""",
            {"ids": list(deal_ids)},
        )
        events: dict[str, list[DealEvent]] = defaultdict(list)
        activities: dict[str, list[datetime]] = defaultdict(list)
        for deal_id, event_type, occurred_at, stage, close_date in rows:
            at = _as_utc(occurred_at)
            if event_type == "deal":
                events[deal_id].append(DealEvent(at, stage, close_date))
            else:
                activities[deal_id].append(at)
        return {deal: DealHistory(deal, events[deal], activities[deal]) for deal in events}

    def _recorded_transitions(self, deal_ids: Sequence[str]) -> dict[str, dict[str, StallAlert]]:
        rows = self._rows(
            f"SELECT {', '.join(StallAlert.model_fields)} FROM {self.db}.stall_alert_log FINAL "
            "WHERE deal_id IN {ids:Array(String)}",
            {"ids": list(deal_ids)},
        )
        recorded: dict[str, dict[str, StallAlert]] = defaultdict(dict)
        for row in rows:
            alert = _alert_from_row(row)
            recorded[alert.deal_id][alert.transition_id] = alert
        return recorded

    def _deal_info(self, deal_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows(
            f"""SELECT deal_id, rep_id, team_id, region_id, customer_id, stage, amount
                FROM {self.db}.deals_current WHERE deal_id IN {{ids:Array(String)}}""",
            {"ids": list(deal_ids)},
        )
        names = ("rep_id", "team_id", "region_id", "customer_id", "stage", "amount")
        return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}

    # --- recording and publishing ----------------------------------------------------------------
    def _record(self, alerts: Iterable[StallAlert], published: bool) -> None:
        assert self._client is not None
        version = time.time_ns()
        rows = [
            [*(_column(alert, name) for name in StallAlert.model_fields), int(published), version]
            for alert in alerts
        ]
        self._client.insert("stall_alert_log", rows, column_names=LOG_COLUMNS, database=self.db)

    async def _emit(self, alerts: list[StallAlert]) -> None:
        await self._publish(alerts)
        await asyncio.to_thread(self._record, alerts, True)
        self._unconfirmed = []
        for alert in alerts:
            self._apply(alert)

    async def _publish(self, alerts: list[StallAlert]) -> None:
        producer = self._producer
        assert producer is not None
        futures = [
            await producer.send(
                self.topics.alerts, alert.model_dump_json().encode(), key=alert.deal_id.encode()
            )
            for alert in alerts
        ]
        await asyncio.gather(*futures)
        for alert in alerts:
            self.metrics.alert_transitions.labels(reason=alert.reason, state=alert.state).inc()

    async def _publish_unpublished(self) -> None:
        """After a crash: publish what was recorded but not yet confirmed on the topic, once."""
        pending = await asyncio.to_thread(self._unpublished)
        if not pending:
            return
        on_topic = await self._transition_ids_on_topic()
        missing = [alert for alert in pending if alert.transition_id not in on_topic]
        log.info(
            "stall monitor: %d transitions awaited publishing, %d were not on the topic",
            len(pending),
            len(missing),
        )
        if missing:
            await self._publish(missing)
        await asyncio.to_thread(self._record, pending, True)

    def _unpublished(self) -> list[StallAlert]:
        rows = self._rows(
            f"SELECT {', '.join(StallAlert.model_fields)} FROM {self.db}.stall_alert_log FINAL "
            "WHERE published = 0 ORDER BY at, deal_id"
        )
        return [_alert_from_row(row) for row in rows]

    async def _transition_ids_on_topic(self) -> set[str]:
        records = await read_topics(self.settings.broker, [self.topics.alerts])
        seen: set[str] = set()
        for message in records[self.topics.alerts]:
            try:
                seen.add(StallAlert.model_validate_json(message.value or b"").transition_id)
            except ValueError:
                continue
        return seen

    # --- state -------------------------------------------------------------------------------------
    def _load_state(self) -> None:
        rows = self._rows(
            f"SELECT {', '.join(StallAlert.model_fields)} FROM {self.db}.stall_alert_log FINAL "
            "ORDER BY sequence, at"
        )
        for row in rows:
            self._apply(_alert_from_row(row))

    # The watermark is kept per deal partition, so it stays right when partitions move between workers.
    def _owner(self, partition: int) -> str:
        return f"{self.settings.app_id}:{partition}"

    def _load_watermark(self, scope: frozenset[int]) -> datetime | None:
        """The oldest watermark of the partitions in scope; None (look at every deal) if one has none."""
        owners = [self._owner(partition) for partition in sorted(scope)]
        rows = self._rows(
            f"SELECT owner, watermark FROM {self.db}.stall_monitor_state FINAL WHERE owner IN {{owners:Array(String)}}",
            {"owners": owners},
        )
        if len(rows) < len(owners):
            return None
        return min(_as_utc(row[1]) for row in rows)

    def _save_watermark(self) -> None:
        if self._watermark is None or self._client is None or self._watermark_scope is None:
            return
        now = datetime.now(UTC)
        rows = [[self._owner(partition), self._watermark, now] for partition in sorted(self._watermark_scope)]
        self._client.insert(
            "stall_monitor_state", rows, column_names=["owner", "watermark", "updated_at"], database=self.db
        )

    def _apply(self, alert: StallAlert) -> None:
        if alert.state == "resolved":
            self.open_alerts.pop(alert.alert_id, None)
            return
        labels = {
            "region": alert.region_id,
            "team": alert.team_id,
            "stage": alert.stage,
            "reason": alert.reason,
        }
        self.open_alerts[alert.alert_id] = OpenAlert(
            alert.alert_id, alert.deal_id, alert.reason, alert.severity, labels
        )

    def _update_gauge(self) -> None:
        if self._stalled_now is None:
            return  # no round has read the truth yet
        counts: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for deal_id, *labels in self._stalled_now:
            if self._owns(deal_id):
                counts[tuple(labels)].add(deal_id)
        gauge = self.metrics.stalled_deals
        gauge.clear()
        for (region, team, stage, reason, severity), deals in counts.items():
            gauge.labels(region=region, team=team, stage=stage, reason=reason, severity=severity).set(
                len(deals)
            )

    def _owns(self, deal_id: str) -> bool:
        owned = self._owned_partitions()
        return owned is None or deal_partition(deal_id, self.settings.topic_partitions) in owned

    # --- helpers ---------------------------------------------------------------------------------------
    def _rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        assert self._client is not None
        return [tuple(row) for row in self._client.query(sql, parameters=parameters).result_rows]

    def _scalar(self, sql: str) -> Any:
        rows = self._rows(sql)
        return rows[0][0] if rows else None


@dataclass(frozen=True)
class _Draft:
    """What a new transition of an episode's alert is made from."""

    episode: Episode
    info: dict[str, Any]
    detected_at: datetime
    currency: str

    def make(
        self,
        state: str,
        at: datetime,
        severity: str,
        previous: str | None,
        resolved_by: str | None,
        sequence: int,
        transition_id: str,
    ) -> StallAlert:
        episode, info = self.episode, self.info
        return StallAlert(
            alert_id=episode.alert_id,
            transition_id=transition_id,
            sequence=sequence,
            deal_id=episode.deal_id,
            reason=episode.reason,  # type: ignore[arg-type]
            state=state,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            previous_severity=previous,  # type: ignore[arg-type]
            at=at,
            stalled_since=episode.stalled_since,
            threshold_days=episode.threshold_days,
            resolved_by=resolved_by,  # type: ignore[arg-type]
            rep_id=info["rep_id"],
            team_id=info["team_id"],
            region_id=info["region_id"],
            customer_id=info["customer_id"],
            stage=episode.stage,
            amount=Decimal(info["amount"]),
            currency=self.currency,
            detected_at=self.detected_at,
        )


class _Lifecycle:
    """One alert's recorded transitions, and the next ones to record (numbered after them)."""

    def __init__(self, alert_id: str, recorded: list[StallAlert]) -> None:
        self.alert_id = alert_id
        self.recorded = recorded
        self.new: list[StallAlert] = []
        self._ids = {alert.transition_id for alert in recorded}
        self._sequence = max([len(recorded), *(alert.sequence for alert in recorded)])

    @property
    def last(self) -> StallAlert | None:
        return self.new[-1] if self.new else (self.recorded[-1] if self.recorded else None)

    @property
    def severity(self) -> str | None:
        """The severity as last notified (None before the alert opened)."""
        last = self.last
        return None if last is None else last.severity

    def next_ids(self, state: str) -> tuple[int, str]:
        """(sequence, transition_id) of the next transition."""
        self._sequence += 1
        # The first transition of each state keeps the plain id; a state seen again (an alert
        # escalated again after a deescalation) gets its sequence too, so ids stay unique.
        transition_id = f"{self.alert_id}:{state}"
        if transition_id in self._ids:
            transition_id = f"{transition_id}:{self._sequence}"
        self._ids.add(transition_id)
        return self._sequence, transition_id

    def add(
        self, draft: _Draft, state: str, at: datetime, severity: str, resolved_by: str | None = None
    ) -> None:
        previous = self.severity
        sequence, transition_id = self.next_ids(state)
        self.new.append(draft.make(state, at, severity, previous, resolved_by, sequence, transition_id))


def _follow_episode(episode: Episode, lifecycle: _Lifecycle, draft: _Draft, now: datetime) -> None:
    """Bring an alert whose episode the history has in line with it at ``now``."""
    wanted = episode.transitions(now)
    last = lifecycle.last
    if not wanted:
        return  # nothing happened yet
    if last is not None and last.state == "resolved":
        if last.resolved_by != "late_data":
            return  # the alert is over (final)
        # Withdrawn because late data said it never held, and later data brings the same
        # episode back (a state arriving in between breaks the run that had replaced it): the
        # alert opens again, as new transitions after the withdrawal.
        last = None
    if last is None:
        for transition in wanted:  # first sight: the history as it happened, at event times
            lifecycle.add(draft, transition.state, transition.at, transition.severity, transition.resolved_by)
        return
    escalation = next((t for t in wanted if t.state == "escalated"), None)
    if escalation is not None and lifecycle.severity != "critical":
        lifecycle.add(draft, "escalated", escalation.at, "critical")
    final = wanted[-1]
    if final.state == "resolved":
        lifecycle.add(draft, "resolved", final.at, final.severity, final.resolved_by)
    elif final.severity == "warning" and lifecycle.severity == "critical":
        lifecycle.add(draft, "deescalated", now, "warning")  # late data: not critical after all


def _withdraw(lifecycle: _Lifecycle, now: datetime, detected_at: datetime) -> None:
    """Resolve an alert whose episode the history no longer has: late data showed it never held."""
    last = lifecycle.last
    if last is None or last.state == "resolved":
        return
    sequence, transition_id = lifecycle.next_ids("resolved")
    lifecycle.new.append(
        last.model_copy(
            update={
                "transition_id": transition_id,
                "sequence": sequence,
                "state": "resolved",
                "previous_severity": last.severity,
                "at": now,
                "resolved_by": "late_data",
                "detected_at": detected_at,
            }
        )
    )


def reconcile(
    live: Iterable[Episode],
    recorded: dict[str, list[StallAlert]],
    now: datetime,
    info: dict[str, Any],
    detected_at: datetime,
    currency: str,
) -> list[StallAlert]:
    """The transitions that bring one deal's alerts in line with its episodes at ``now``.

    ``live`` are the episodes the deal's full history gives (streams.stall_episodes), ``recorded``
    the transitions already recorded per alert, in sequence order. An alert not notified yet gets
    the episode's transitions at their event times; an alert under way follows the truth:
    escalated when the episode is critical and the alert is not, resolved when the episode ended,
    deescalated (at ``now``) when late data shows it is not critical. An alert whose episode the
    history no longer has (late data showed the rule did not hold as alerted) is resolved at
    ``now`` with ``resolved_by = "late_data"``. A resolved alert is final, unless it was
    withdrawn that way and the history has its episode again: then it opens again.
    """
    emitted: list[StallAlert] = []
    seen: set[str] = set()
    for episode in live:
        seen.add(episode.alert_id)
        lifecycle = _Lifecycle(episode.alert_id, recorded.get(episode.alert_id, []))
        _follow_episode(episode, lifecycle, _Draft(episode, info, detected_at, currency), now)
        emitted += lifecycle.new
    for alert_id, transitions in recorded.items():
        if alert_id not in seen:
            lifecycle = _Lifecycle(alert_id, transitions)
            _withdraw(lifecycle, now, detected_at)
            emitted += lifecycle.new
    return emitted


def _column(alert: StallAlert, name: str) -> Any:
    value = getattr(alert, name)
    return "" if value is None else value


def _alert_from_row(row: Sequence[Any]) -> StallAlert:
    values = dict(zip(StallAlert.model_fields, row, strict=True))
    for name in ("at", "stalled_since", "detected_at"):
        values[name] = _as_utc(values[name])
    values["resolved_by"] = values["resolved_by"] or None
    values["previous_severity"] = values["previous_severity"] or None
    values["sequence"] = max(1, values["sequence"])  # rows recorded before sequences existed: 0
    return StallAlert(**values)


def _alerts_by_id(transitions: dict[str, StallAlert]) -> dict[str, list[StallAlert]]:
    """Each alert's recorded transitions, in the order they were recorded."""
    by_id: dict[str, list[StallAlert]] = defaultdict(list)
    for alert in transitions.values():
        by_id[alert.alert_id].append(alert)
    for alerts in by_id.values():
        alerts.sort(key=lambda alert: (alert.sequence, alert.at, _STATE_ORDER[alert.state]))
    return by_id


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
