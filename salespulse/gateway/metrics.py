"""Prometheus metrics of the gateway, on its own registry, served at ``/metrics``.

The ``source`` label is the name of the token that authenticated the request: a bounded set
fixed by configuration (an event's own ``source`` field is free text and would not be).
"""

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest

disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """Requests, events accepted and rejected, publish latency and broker errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "salespulse_gateway_requests",
            "HTTP requests answered, by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "salespulse_gateway_events_accepted",
            "Events and records acknowledged by the broker, by type and source (token name).",
            ["type", "source"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "salespulse_gateway_events_rejected",
            "Events and records rejected (not published), by type, reason and source (token name).",
            ["type", "reason", "source"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "salespulse_gateway_publish_seconds",
            "Time from the first send of a request's messages to the broker's last acknowledgement.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "salespulse_gateway_request_seconds",
            "Time to answer an ingestion request, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.broker_errors = Counter(
            "salespulse_gateway_broker_errors",
            "Requests answered 503 because the broker was unavailable or too slow.",
            registry=self.registry,
        )
        self.refused = Counter(
            "salespulse_gateway_requests_refused",
            "Requests refused as a whole (nothing published), by reason: unauthorized, too_large, ...",
            ["reason"],
            registry=self.registry,
        )

        self.ignored = Counter(
            "salespulse_gateway_webhook_items_ignored",
            "Webhook items with no contract meaning (other objects, deletions, unused properties), by source.",
            ["source"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
