"""`salespulse import FILE.csv --mapping FILE.toml` against the real embedded broker (issue 13).

The shipped examples (examples/import) import cleanly into exactly the events written out by
hand below; a file with bad rows lists each with file:line and the value, publishes the good
rows, and exits 1.
"""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from salespulse.embedded.broker import EmbeddedBroker
from salespulse.kafka.consumers import read_topics

EXAMPLES = Path(__file__).parents[2] / "examples" / "import"

HUBSPOT = [
    (
        "9001",
        "2026-03-01T09:00:00-05:00",
        "rep-01",
        "company-100",
        "prospecting",
        "12000.00",
        "2026-04-30",
        None,
    ),
    (
        "9002",
        "2026-03-03T16:45:00-05:00",
        "rep-02",
        "company-101",
        "negotiation",
        "48000",
        "2026-03-31",
        None,
    ),
    ("9003", "2026-03-05T11:15:00-05:00", "rep-03", "company-102", "won", "7500.50", "2026-03-05", None),
    (
        "9004",
        "2026-03-06T17:20:00-05:00",
        "rep-01",
        "company-103",
        "lost",
        "3200",
        "2026-03-06",
        "Chose a competitor",
    ),
]
HUBSPOT_EXPORTED = {
    "9001": "2026-03-01 09:00",
    "9002": "2026-03-03 16:45",
    "9003": "2026-03-05 11:15",
    "9004": "2026-03-06 17:20",
}
SALESFORCE = [
    (
        "0065g00000A1",
        "2026-03-02T14:30:00+08:00",
        "rep-01",
        "0015g00000X1",
        "negotiation",
        "25000.00",
        "2026-04-15",
        "03/02/2026 02:30 PM",
    ),
    (
        "0065g00000A2",
        "2026-03-04T10:05:00+08:00",
        "rep-02",
        "0015g00000X2",
        "won",
        "9900.00",
        "2026-03-04",
        "03/04/2026 10:05 AM",
    ),
    (
        "0065g00000A3",
        "2026-03-05T16:45:00+08:00",
        "rep-02",
        "0015g00000X3",
        "prospecting",
        "0",
        "2026-05-30",
        "03/05/2026 04:45 PM",
    ),
]


def hubspot_events() -> list[dict[str, Any]]:
    events = []
    for record, occurred, rep, customer, stage, amount, close, lost in HUBSPOT:
        event = {
            "event_type": "deal",
            "source": "hubspot",
            "event_id": f"hubspot-{record}@{HUBSPOT_EXPORTED[record]}",
            "deal_id": f"hubspot-{record}",
            "occurred_at": occurred,
            "rep_id": rep,
            "customer_id": customer,
            "stage": stage,
            "amount": amount,
            "currency": "USD",
            "expected_close_date": close,
        }
        if lost:
            event["lost_reason"] = lost
        events.append(event)
    return events


def salesforce_events() -> list[dict[str, Any]]:
    return [
        {
            "event_type": "deal",
            "source": "salesforce",
            "event_id": f"sfdc-{opportunity}@{exported}",
            "deal_id": f"sfdc-{opportunity}",
            "occurred_at": occurred,
            "rep_id": rep,
            "customer_id": account,
            "stage": stage,
            "amount": amount,
            "currency": "USD",
            "expected_close_date": close,
        }
        for opportunity, occurred, rep, account, stage, amount, close, exported in SALESFORCE
    ]


def run_import(
    broker: EmbeddedBroker, prefix: str, csv_file: Path, mapping: Path
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SALESPULSE_")}
    env.update({"SALESPULSE_BROKER": broker.bootstrap, "SALESPULSE_TOPIC_PREFIX": prefix, "COLUMNS": "200"})
    command = [sys.executable, "-m", "salespulse", "import", str(csv_file), "--mapping", str(mapping)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def deals_on(broker: EmbeddedBroker, prefix: str) -> list[dict[str, Any]]:
    records = asyncio.run(read_topics(broker.bootstrap, [f"{prefix}deals"]))[f"{prefix}deals"]
    return sorted((orjson.loads(record.value) for record in records), key=lambda event: event["event_id"])


def test_the_shipped_examples_import_into_exactly_these_events(broker: EmbeddedBroker) -> None:
    for name, expected, prefix in (
        ("hubspot-deals", hubspot_events(), "csvhub."),
        ("salesforce-opportunities", salesforce_events(), "csvsf."),
    ):
        result = run_import(broker, prefix, EXAMPLES / f"{name}.csv", EXAMPLES / f"{name}.toml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{len(expected)} rows: {len(expected)} published" in result.stdout
        assert deals_on(broker, prefix) == sorted(expected, key=lambda event: event["event_id"])


def test_bad_rows_are_listed_with_file_line_and_value_and_the_good_ones_published(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    good = (EXAMPLES / "hubspot-deals.csv").read_text()
    bad_rows = [
        "9005,Bad stage,Closed Won Maybe,100,USD,2026-04-30,Alice Wang,company-104,2026-03-01 09:00,2026-03-07 09:00,",
        "9006,Unknown owner,Closed Won,100,USD,2026-04-30,Dan Smith,company-105,2026-03-01 09:00,2026-03-07 09:00,",
        "9007,Bad time,Closed Won,100,USD,2026-04-30,Bo Chen,company-106,2026-03-01 09:00,yesterday,",
        "9008,Negative,Closed Won,-5,USD,2026-04-30,Bo Chen,company-107,2026-03-01 09:00,2026-03-07 09:00,",
    ]
    lines = good.splitlines()
    # Bad rows between good ones: line 3 and lines 5-7 of the file (line 1 is the header).
    mixed = [
        lines[0],
        lines[1],
        bad_rows[0],
        lines[2],
        bad_rows[1],
        bad_rows[2],
        bad_rows[3],
        lines[3],
        lines[4],
    ]
    csv_file = tmp_path / "deals.csv"
    csv_file.write_text("\n".join(mixed) + "\n")

    result = run_import(broker, "csvbad.", csv_file, EXAMPLES / "hubspot-deals.toml")

    assert result.returncode == 1, result.stdout + result.stderr
    errors = " ".join(result.stderr.split())
    assert f"{csv_file}:3: column 'Deal Stage': value 'Closed Won Maybe' is not in [values.stage]" in errors
    assert f"{csv_file}:5: column 'Deal owner': value 'Dan Smith' is not in [values.rep_id]" in errors
    assert f"{csv_file}:6: column 'Last Modified Date': 'yesterday' does not match" in errors
    assert f"{csv_file}:7: invalid_value: field 'amount'" in errors
    assert "8 rows: 4 published" in " ".join(result.stdout.split()) and "4 bad" in result.stdout
    assert deals_on(broker, "csvbad.") == sorted(hubspot_events(), key=lambda event: event["event_id"])
