"""Publishing JSON Lines files to their topics (``salespulse publish``).

Each line goes to the topic of its ``event_type`` (or of ``--type``) as the *exact bytes* of the
line: validation is the pipeline's job, and an invalid event must reach the DLQ with a reason, so
nothing here checks fields. Only lines whose topic cannot be determined (not JSON, not an object,
no usable type) are held back, and each is reported with its file, line number and reason.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka.errors import MessageSizeTooLargeError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from salespulse.config import Settings
from salespulse.kafka.producer import (
    ACTIVITY_TYPES,
    CONNECT_TIMEOUT_SECONDS,
    MAX_MESSAGE_BYTES,
    RECORD_TYPES,
    REFERENCE_TYPES,
    TopicPublisher,
    message_key,
)

_UTF8_BOM = b"\xef\xbb\xbf"
_PROGRESS_STEP_BYTES = 256 * 1024


@dataclass(frozen=True)
class BadLine:
    """A line that was not published, and why."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Route:
    """Where one line goes: its record type (hence topic) and its key."""

    record_type: str
    key: str | None


@dataclass
class PublishReport:
    """What :func:`publish_files` did: acknowledged messages per topic and the lines it held back."""

    by_topic: dict[str, int] = field(default_factory=dict)
    bad_lines: list[BadLine] = field(default_factory=list)
    lines: int = 0
    """Non-blank lines read, published or not."""

    @property
    def published(self) -> int:
        return sum(self.by_topic.values())

    def summary(self) -> Text:
        """A few lines for a person: counts by topic, then every bad line (plain text, no markup)."""
        text = Text()
        files_line = f"published {self.published} of {self.lines} lines"
        text.append(files_line, style="bold green" if not self.bad_lines else "bold yellow")
        if self.by_topic:
            text.append(
                ": " + ", ".join(f"{topic} {count}" for topic, count in sorted(self.by_topic.items()))
            )
        if self.bad_lines:
            text.append(f"\n{len(self.bad_lines)} line(s) not published:", style="bold red")
            for bad in self.bad_lines:
                text.append(f"\n  {bad}")
        return text

    def __str__(self) -> str:
        return self.summary().plain


def route_line(raw: bytes, type_override: str | None = None) -> Route | str:
    """Decide the topic type and key of one non-blank line, or say why it cannot be published.

    Only what is needed to route is checked: the line must be a JSON object, and without
    ``type_override`` its ``event_type`` must name an activity type. With ``type_override``
    the override decides (a contradicting ``event_type`` is the pipeline's to reject).
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return f"not valid JSON ({error})"
    if not isinstance(value, dict):
        return f"a JSON {_json_kind(value)}, not an object; each line must be one JSON object"
    if type_override is not None:
        return Route(type_override, message_key(type_override, value))
    if "event_type" not in value:
        return (
            "no event_type field, so its topic is unknown; add one (visit, call, deal or feedback) "
            "or publish the file with --type"
        )
    event_type = value["event_type"]
    if not isinstance(event_type, str) or event_type not in ACTIVITY_TYPES:
        shown = orjson.dumps(event_type).decode()
        hint = (
            f"; publish {event_type} records with --type {event_type}"
            if event_type in REFERENCE_TYPES
            else ""
        )
        return f"event_type {shown} is not one of {', '.join(ACTIVITY_TYPES)}{hint}"
    return Route(event_type, message_key(event_type, value))


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def read_lines(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """``(line number, line without surrounding blanks, bytes it took in the file)`` for every line.

    Works on bytes: a line is sent exactly as written (no re-encoding), and bad UTF-8 is
    reported by the JSON parser along with the rest of the line's problems.
    """
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            size = len(line)
            if number == 1 and line.startswith(_UTF8_BOM):  # written by some Windows tools
                line = line[len(_UTF8_BOM) :]
            yield number, line.strip(), size


def publish_files(
    paths: Sequence[Path | str],
    settings: Settings,
    type_override: str | None = None,
    progress: bool = True,
    *,
    create_topics: bool = True,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    console: Console | None = None,
) -> PublishReport:
    """Publish JSON Lines files: one event (or, with ``type_override``, record) per line.

    Every line that is a JSON object with a known type is sent, as written, to its topic with
    the key of :func:`message_key`; blank lines are skipped; every other line is listed in the
    report's ``bad_lines`` with its file, line number and reason, and does not stop the rest.
    Returns once the broker has acknowledged everything; raises :class:`BrokerUnavailable`
    (naming the broker address and SALESPULSE_BROKER / --broker) if it cannot be reached.
    """
    if type_override is not None and type_override not in RECORD_TYPES:
        raise ValueError(f"unknown type '{type_override}'; expected one of {', '.join(RECORD_TYPES)}")
    # The bar goes to stderr, so that stdout carries only the report; nothing when not a terminal.
    console = console or Console(stderr=True)
    files = [Path(path) for path in paths]
    total_bytes = sum(path.stat().st_size for path in files)  # a missing file fails before connecting
    report = PublishReport()
    with (
        TopicPublisher(settings, create_topics=create_topics, connect_timeout=connect_timeout) as publisher,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not progress or not console.is_terminal,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("publishing", total=total_bytes)
        for path in files:
            bar.update(task, description=path.name)
            pending = 0
            for number, raw, size in read_lines(path):
                pending += size
                if pending >= _PROGRESS_STEP_BYTES:
                    bar.advance(task, pending)
                    pending = 0
                if not raw:
                    continue
                report.lines += 1
                _publish_line(publisher, path, number, raw, type_override, report)
            bar.advance(task, pending)
        bar.update(task, description="waiting for the broker to acknowledge")
        publisher.flush()
    report.by_topic = dict(sorted(publisher.acknowledged.items()))
    report.bad_lines.sort(key=lambda bad: (files.index(bad.path), bad.line))
    return report


def _publish_line(
    publisher: TopicPublisher,
    path: Path,
    number: int,
    raw: bytes,
    type_override: str | None,
    report: PublishReport,
) -> None:
    route = route_line(raw, type_override)
    if isinstance(route, str):
        report.bad_lines.append(BadLine(path, number, route))
        return

    def refused(error: BaseException) -> None:
        report.bad_lines.append(BadLine(path, number, f"the broker refused it: {error!r}"))

    try:
        publisher.send(route.record_type, raw, route.key, on_refused=refused)
    except MessageSizeTooLargeError:
        report.bad_lines.append(
            BadLine(
                path, number, f"{len(raw)} bytes, more than a Kafka message may hold ({MAX_MESSAGE_BYTES})"
            )
        )
