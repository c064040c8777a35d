"""`salespulse targets import`: targets kept in a spreadsheet, published to the targets topic.

Managers keep targets in CSV (a header row with the target fields of contract §3) or JSON Lines.
Every row is validated with the same model the pipeline uses; a bad row is reported with its
line number and the reason, and the good rows are published anyway (one bad cell must not
hold back a whole team's targets). Later records for the same key replace earlier ones in
the pipeline, so importing a corrected file again is safe.
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from salespulse.config import Settings
from salespulse.kafka.producer import TopicPublisher
from salespulse.schemas.reference import TargetRecord

TARGET_FIELDS = ("level", "entity_id", "metric", "period", "period_start", "target")


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    published: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row as a dict) per data row, or (line, reason) when a row cannot be read."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError as error:
                    yield number, f"not valid JSON ({error})"
                    continue
                yield number, value if isinstance(value, dict) else "not a JSON object"
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
        reader = csv.DictReader(handle)
        missing = [name for name in TARGET_FIELDS if name not in (reader.fieldnames or [])]
        if missing:
            yield 1, f"the header misses the column(s) {', '.join(missing)}"
            return
        for row in reader:
            # line_num is the reader's position after the row: the row's own last line.
            yield reader.line_num, {name: (value or "").strip() for name, value in row.items() if name}


def validate(row: dict[str, Any]) -> TargetRecord | str:
    """The row as a target record, or a reason a person can act on."""
    try:
        # JSON validation: CSV cells are text, and the model accepts dates and amounts as text there.
        return TargetRecord.model_validate_json(orjson.dumps(row))
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {message}" if where else message


def import_targets(path: Path, settings: Settings) -> ImportReport:
    """Publish every valid row of ``path`` to the targets topic; list the others."""
    report = ImportReport()
    with TopicPublisher(settings) as publisher:
        for line, row in read_rows(path):
            record = row if isinstance(row, str) else validate(row)
            if isinstance(record, str):
                report.bad_rows.append(BadRow(line, record))
                continue
            publisher.send_record("targets", record.model_dump(mode="json"))
        publisher.flush()
        report.published = sum(publisher.acknowledged.values())
    return report
