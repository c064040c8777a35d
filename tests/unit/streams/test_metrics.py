"""The bulk histogram observation gives exactly what one observe per value gives."""

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from salespulse.streams.metrics import observe_many

BUCKETS = (0.1, 0.5, 1.0, 5.0)
AMOUNTS = [0.0, 0.1, 0.10001, 0.5, 0.7, 1.0, 4.99, 5.0, 5.01, 100.0]


def exposition(fill: str) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("delay_seconds", "d", buckets=BUCKETS, registry=registry)
    if fill == "bulk":
        observe_many(histogram, AMOUNTS)
    else:
        for amount in AMOUNTS:
            histogram.observe(amount)
    return generate_latest(registry)


def test_bulk_observe_equals_single_observes() -> None:
    bulk = exposition("bulk")
    assert bulk == exposition("single")
    assert b'delay_seconds_bucket{le="0.1"} 2.0' in bulk  # 0.0 and 0.1 (upper bounds are inclusive)
    assert b'delay_seconds_bucket{le="+Inf"} 10.0' in bulk
