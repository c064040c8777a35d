"""Prometheus metrics of the worker (contract §7 observability).

One ``Metrics`` object per worker process, on its own registry, served at ``/metrics``.
The event counters reconcile: for every type, consumed = accepted + duplicate + rejected.
"""

import bisect

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# The *_created series double the exposition for no use here.
disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


def observe_many(histogram: Histogram, amounts: list[float]) -> None:
    """``histogram.observe`` for each amount, in one pass: tens of thousands per batch on the hot path.

    Uses the histogram's bucket values directly (prometheus-client keeps per-bucket counts and a
    sum); falls back to one observe per amount if that layout ever changes.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for amount in amounts:
            histogram.observe(amount)
        return
    counts = [0] * len(bounds)
    for amount in amounts:
        counts[bisect.bisect_left(bounds, amount)] += 1
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)
    total.inc(sum(amounts))


class Metrics:
    """The worker's metrics; names follow Prometheus conventions (``_total``, ``_seconds``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "salespulse_events_consumed_total", "Messages read from the input topics.", ["type"], registry=r
        )
        self.accepted = Counter(
            "salespulse_events_accepted_total",
            "Messages accepted and written to ClickHouse.",
            ["type"],
            registry=r,
        )
        self.duplicates = Counter(
            "salespulse_events_duplicate_total",
            "Activity events whose event_id had been accepted before (they change nothing).",
            ["type"],
            registry=r,
        )
        self.rejected = Counter(
            "salespulse_events_rejected_total",
            "Messages rejected and sent to the DLQ, by reason.",
            ["type", "reason"],
            registry=r,
        )
        self.processing_seconds = Histogram(
            "salespulse_batch_processing_seconds",
            "Time to decode and validate one batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sink_write_seconds = Histogram(
            "salespulse_sink_write_seconds",
            "Time to write one batch to ClickHouse (successful writes).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sink_errors = Counter(
            "salespulse_sink_errors_total",
            "Failed writes to ClickHouse (each retried).",
            ["error"],
            registry=r,
        )
        self.batch_events = Histogram(
            "salespulse_batch_messages",
            "Messages per flushed batch.",
            buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000),
            registry=r,
        )
        self.event_delay_seconds = Histogram(
            "salespulse_event_delay_seconds",
            "Freshness: from the Kafka message timestamp to the event being queryable in ClickHouse.",
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "salespulse_consumer_lag_messages",
            "Messages in the partition not yet written by this worker.",
            ["topic", "partition"],
            registry=r,
        )
        self.last_flush = Gauge(
            "salespulse_last_flush_timestamp_seconds",
            "When the last batch was written (Unix time).",
            registry=r,
        )
        self.clickhouse_up = Gauge(
            "salespulse_clickhouse_up",
            "1 when the last write to ClickHouse succeeded, 0 during an outage.",
            registry=r,
        )
        self.stalled_deals = Gauge(
            "salespulse_stalled_deals",
            "Open deals with an open stall alert, by rule and severity (this worker's deals).",
            ["region", "team", "stage", "reason", "severity"],
            registry=r,
        )
        self.alert_transitions = Counter(
            "salespulse_alert_transitions_total",
            "Stall alert transitions published to the alerts topic.",
            ["reason", "state"],
            registry=r,
        )
        self.followups_due = Gauge(
            "salespulse_followups_due",
            "Customers whose regular follow-up is due or overdue (the followup_due view), by team, tier and status.",
            ["team", "tier", "status"],
            registry=r,
        )
        self.worker_info = Gauge(
            "salespulse_worker_info",
            "Static information about the worker.",
            ["app_id", "clickhouse"],
            registry=r,
        )

    def observe_delays(self, written_at: float, timestamps_ms: list[int]) -> None:
        """Observe the freshness of every message of a batch at once (one lock per bucket, not per message)."""
        observe_many(self.event_delay_seconds, [max(0.0, written_at - ms / 1000) for ms in timestamps_ms])

    def exposition(self) -> bytes:
        """The text exposition format served at /metrics."""
        return generate_latest(self.registry)
