"""CRM exports (CSV) turned into contract events through a mapping file (``salespulse import``).

The mapping (TOML) says, for each contract field, which column holds it, and how to read
values the CRM writes its own way::

    event_type = "deal"                     # or a column: [columns] event_type = "Type"
    source = "hubspot"                      # optional: the events' source
    [columns]                               # field = "Column"  or a template "{Record ID}-{Last Modified Date}"
    event_id = "{Record ID}@{Last Modified Date}"
    occurred_at = "Last Modified Date"
    [constants]                             # fields with one value for every row
    currency = "USD"
    [values.stage]                          # the CRM's value = the contract's value
    "Closed Won" = "won"
    [timestamps]                            # how the CRM writes times (strptime), in which zone
    format = "%Y-%m-%d %H:%M"
    timezone = "America/New_York"
    date_format = "%Y-%m-%d"                # for expected_close_date
    [numbers]
    thousands_separator = ","

A value that a value map does not list is rejected with its file, line and value — never
guessed. Every row is then judged by the one decoder of salespulse, as the worker will judge
it; rows it rejects are listed with its reason, the others are published.
"""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from salespulse.config import Settings, read_toml_file
from salespulse.kafka.producer import TopicPublisher, message_key
from salespulse.schemas.decoding import Decoder, Rejection

INTEGER_FIELDS = frozenset({"duration_minutes", "duration_seconds", "score", "schema_version"})
DATE_FIELDS = frozenset({"expected_close_date"})
TIMESTAMP_FIELDS = frozenset({"occurred_at"})
AMOUNT_FIELDS = frozenset({"amount"})
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_INTEGER = re.compile(r"-?\d+")
_KNOWN_KEYS = {"event_type", "source", "columns", "constants", "values", "timestamps", "numbers"}


class MappingError(ValueError):
    """The mapping file is wrong (named with the key to fix)."""


@dataclass(frozen=True)
class CsvMapping:
    """A checked mapping file."""

    path: Path
    columns: dict[str, str]
    constants: dict[str, Any]
    values: dict[str, dict[str, str]]
    timestamp_format: str | None = None
    timezone: ZoneInfo | None = None
    date_format: str | None = None
    thousands_separator: str | None = None

    def headers_needed(self) -> set[str]:
        needed: set[str] = set()
        for spec in self.columns.values():
            names = _PLACEHOLDER.findall(spec)
            needed.update(names or [spec])
        return needed


def load_mapping(path: Path) -> CsvMapping:
    """Read and check a mapping file; every error names the file and the key."""
    try:
        data = read_toml_file(path, "mapping file")
    except ValueError as error:
        raise MappingError(str(error)) from None
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise MappingError(
            f"mapping file {path}: unknown key(s) {sorted(unknown)}; expected {sorted(_KNOWN_KEYS)}"
        )
    columns = _table_of_strings(data, "columns", path)
    constants = dict(data.get("constants", {}))
    for name in ("event_type", "source"):
        if name in data:
            constants[name] = data[name]
    if "event_type" not in columns and "event_type" not in constants:
        raise MappingError(
            f'mapping file {path}: say which events the file holds: event_type = "deal" (or a column)'
        )
    overlap = set(columns) & set(constants)
    if overlap:
        raise MappingError(f"mapping file {path}: {sorted(overlap)} both a column and a constant; keep one")
    values_table = data.get("values", {})
    if not isinstance(values_table, dict):
        raise MappingError(f"mapping file {path}: [values] must hold tables like [values.stage]")
    values = {name: _table_of_strings(values_table, name, path, "values.") for name in values_table}
    stamps = data.get("timestamps", {})
    timezone = None
    if "timezone" in stamps:
        try:
            timezone = ZoneInfo(stamps["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise MappingError(
                f"mapping file {path}: [timestamps] timezone {stamps['timezone']!r} is not an IANA name like Asia/Shanghai"
            ) from None
    if stamps.get("format") and timezone is None and "%z" not in stamps["format"]:
        raise MappingError(
            f'mapping file {path}: [timestamps] format has no offset (%z); give timezone = "…" so times are not guessed'
        )
    return CsvMapping(
        path=path,
        columns=columns,
        constants=constants,
        values=values,
        timestamp_format=stamps.get("format"),
        timezone=timezone,
        date_format=stamps.get("date_format"),
        thousands_separator=data.get("numbers", {}).get("thousands_separator"),
    )


def _table_of_strings(data: dict[str, Any], name: str, path: Path, prefix: str = "") -> dict[str, str]:
    table = data.get(name, {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise MappingError(f'mapping file {path}: [{prefix}{name}] must be a table of "key" = "text"')
    return dict(table)


@dataclass(frozen=True)
class BadRow:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    published: dict[str, int] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)


class _RowProblem(ValueError):
    pass


class RowReader:
    """Turns one CSV row into an event dict, as the mapping says (no validation of the contract yet)."""

    def __init__(self, mapping: CsvMapping) -> None:
        self.mapping = mapping

    def event(self, row: dict[str, str]) -> dict[str, Any]:
        mapping = self.mapping
        event: dict[str, Any] = dict(mapping.constants)
        for field_name, spec in mapping.columns.items():
            names = _PLACEHOLDER.findall(spec)
            if names:
                raw = _PLACEHOLDER.sub(lambda match: (row.get(match.group(1)) or "").strip(), spec)
            else:
                raw = (row.get(spec) or "").strip()
            if raw == "":
                continue  # a missing optional field; the decoder reports a missing required one
            event[field_name] = self._value(field_name, spec, raw)
        return event

    def _value(self, field_name: str, column: str, raw: str) -> Any:
        mapping = self.mapping
        if field_name in mapping.values:
            allowed = mapping.values[field_name]
            if raw not in allowed:
                listed = ", ".join(repr(key) for key in list(allowed)[:8])
                raise _RowProblem(
                    f"column {column!r}: value {raw!r} is not in [values.{field_name}] of {mapping.path} "
                    f"(it lists {listed}{', …' if len(allowed) > 8 else ''}); add it there"
                )
            raw = allowed[raw]
        if field_name in TIMESTAMP_FIELDS and mapping.timestamp_format:
            try:
                moment = datetime.strptime(raw, mapping.timestamp_format)
            except ValueError:
                raise _RowProblem(
                    f"column {column!r}: {raw!r} does not match [timestamps] format {mapping.timestamp_format!r}"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=mapping.timezone)
            return moment.isoformat()
        if field_name in DATE_FIELDS and mapping.date_format:
            try:
                return datetime.strptime(raw, mapping.date_format).date().isoformat()
            except ValueError:
                raise _RowProblem(
                    f"column {column!r}: {raw!r} does not match [timestamps] date_format {mapping.date_format!r}"
                ) from None
        if field_name in AMOUNT_FIELDS and mapping.thousands_separator:
            return raw.replace(mapping.thousands_separator, "")
        if field_name in INTEGER_FIELDS and _INTEGER.fullmatch(raw):
            return int(raw)
        return raw


def read_rows(
    csv_path: Path, mapping: CsvMapping, decoder: Decoder
) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    """(line, event) for each row the decoder accepts, (line, BadRow) for the others; line = the row's first line."""
    reader_of = RowReader(mapping)
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = mapping.headers_needed() - set(reader.fieldnames or ())
        if missing:
            raise MappingError(
                f"{csv_path} has no column(s) {sorted(missing)} that {mapping.path} names; "
                f"its columns are {reader.fieldnames}"
            )
        line = reader.line_num + 1
        for row in reader:
            try:
                event = reader_of.event(row)
            except _RowProblem as problem:
                yield line, BadRow(csv_path, line, str(problem))
            else:
                decoded = decoder.decode_typed_event(orjson.dumps(event))
                if isinstance(decoded, Rejection):
                    yield line, BadRow(csv_path, line, f"{decoded.reason}: {decoded.message}")
                else:
                    yield line, event
            line = reader.line_num + 1


def import_csv(csv_path: Path, mapping_path: Path, settings: Settings, console: Console) -> ImportReport:
    """Publish the good rows of ``csv_path`` (mapped by ``mapping_path``); bad rows are reported."""
    mapping = load_mapping(mapping_path)
    decoder = Decoder(settings)
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        total = max(sum(1 for _ in csv.DictReader(handle)), 0)
    report = ImportReport()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with TopicPublisher(settings) as publisher, progress:
        task = progress.add_task(f"importing {csv_path.name}", total=total)
        for _, outcome in read_rows(csv_path, mapping, decoder):
            report.rows += 1
            if isinstance(outcome, BadRow):
                report.bad_rows.append(outcome)
            else:
                event_type = outcome["event_type"]
                topic = publisher.send(event_type, orjson.dumps(outcome), message_key(event_type, outcome))
                report.published[topic] = report.published.get(topic, 0) + 1
            progress.advance(task)
        publisher.flush()
    return report
