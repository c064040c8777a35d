"""Publishing JSON Lines without a broker: routing of lines, and the error for a missing broker."""

import time
from pathlib import Path

import pytest

from salespulse.config import Settings
from salespulse.kafka.producer import BrokerUnavailable
from salespulse.publishing.json_lines import Route, publish_files, read_lines, route_line
from salespulse.runtime.ports import free_port


@pytest.mark.parametrize(
    ("line", "override", "expected"),
    [
        (b'{"event_type": "visit", "customer_id": "c1"}', None, Route("visit", "c1")),
        (b'{"event_type": "deal", "deal_id": "d1", "customer_id": "c1"}', None, Route("deal", "d1")),
        # The override decides; a contradicting event_type is for the pipeline to reject.
        (b'{"event_type": "visit", "customer_id": "c1"}', "call", Route("call", "c1")),
        (b'{"rep_id": "r1", "effective_from": "2026-01-01"}', "org", Route("org", "r1|2026-01-01")),
        # Invalid events are published all the same: the pipeline sends them to the DLQ.
        (b'{"event_type": "feedback", "score": "high"}', None, Route("feedback", None)),
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe{}", None, "not valid JSON"),
        (b"[1, 2]", None, "a JSON array, not an object"),
        (b'"visit"', "visit", "a JSON string, not an object"),
        (b"null", None, "a JSON null, not an object"),
        (b'{"customer_id": "c1"}', None, "no event_type field"),
        (b'{"event_type": "visits"}', None, 'event_type "visits" is not one of visit, call, deal, feedback'),
        (b'{"event_type": 3}', None, "event_type 3 is not one of"),
        (b'{"event_type": "org"}', None, "publish org records with --type org"),
    ],
)
def test_route_line(line: bytes, override: str | None, expected: Route | str) -> None:
    route = route_line(line, override)
    if isinstance(expected, Route):
        assert route == expected
    else:
        assert isinstance(route, str) and expected in route


def test_read_lines_strips_blanks_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\n   \n\t{"b": 2}  \n{"c": 3}')
    lines = list(read_lines(path))
    assert [(number, raw) for number, raw, _ in lines] == [
        (1, b'{"a": 1}'),
        (2, b""),
        (3, b""),
        (4, b'{"b": 2}'),
        (5, b'{"c": 3}'),
    ]
    assert sum(size for _, _, size in lines) == path.stat().st_size


def test_an_unreachable_broker_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_type": "visit"}\n')
    address = f"127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable) as raised:
        publish_files([path], Settings(broker=address), progress=False, connect_timeout=1.0)
    assert time.monotonic() - began < 15
    message = str(raised.value)
    assert address in message and "SALESPULSE_BROKER" in message and "--broker" in message
    assert isinstance(raised.value, ConnectionError)  # what the CLI catches


def test_unknown_type_override_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown type 'visits'"):
        publish_files([tmp_path / "missing.jsonl"], Settings(), type_override="visits")
