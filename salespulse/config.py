"""Every setting of salespulse: one frozen pydantic-settings model, validated at start-up.

Each field is read from the environment variable ``SALESPULSE_<FIELD>`` (upper case) and
may be overridden by a CLI flag. A bad value stops start-up with a message naming the
variable, the value and what is expected (see :func:`describe_settings_error`).

The configuration that lives beside the variables is checked here too, so that every mistake is
reported before anything starts: the stall rules file (thresholds, :class:`StallRules`) and the
webhook targets (:class:`WebhookTarget`). This module sits at the bottom of the package: it
imports only the contract (``salespulse.schemas``).
"""

import re
import tomllib
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from salespulse.schemas.alerts import AlertState, Severity, StallAlert
from salespulse.schemas.events import OPEN_STAGES

ENV_PREFIX = "SALESPULSE_"
# Never echoed in error messages.
SECRET_FIELDS = frozenset(
    {"ui_token", "ui_basic_auth", "ui_clickhouse_url", "ingest_tokens", "broker_storage"}
)
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")

# Stall thresholds of contract §6, per open stage; the rules file and SALESPULSE_STALL_* override them.
DEFAULT_IDLE_DAYS: dict[str, int] = {"prospecting": 14, "qualified": 10, "proposal": 7, "negotiation": 5}
DEFAULT_STAGE_DAYS: dict[str, int] = {"prospecting": 30, "qualified": 21, "proposal": 14, "negotiation": 14}
DEFAULT_OVERDUE_CRITICAL_DAYS = 7


@dataclass(frozen=True)
class StallRules:
    """The stall thresholds in force (contract §6): days per open stage, and the reporting time zone."""

    idle_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_IDLE_DAYS))
    stage_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_STAGE_DAYS))
    overdue_critical_days: int = DEFAULT_OVERDUE_CRITICAL_DAYS
    timezone: str = "UTC"


WebhookKind = Literal["generic", "slack", "dingtalk", "wecom"]
ALL_STATES: frozenset[AlertState] = frozenset({"opened", "escalated", "deescalated", "resolved"})
MAX_BACKOFF_SECONDS = 60.0
_SEVERITY_RANK: dict[str, int] = {"warning": 0, "critical": 1}

DEFAULT_STAGE_PROBABILITIES: dict[str, Decimal] = {
    "prospecting": Decimal("0.10"),
    "qualified": Decimal("0.25"),
    "proposal": Decimal("0.50"),
    "negotiation": Decimal("0.75"),
}


def _parse_mapping(value: Any) -> Any:
    """Accept a mapping as JSON (``{"EUR": "1.08"}``) or as ``EUR=1.08,CNY=0.14``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return orjson.loads(text)
    pairs = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(
                f"'{item.strip()}' is not KEY=VALUE; write e.g. EUR=1.08,CNY=0.14 or a JSON object"
            )
        pairs[key.strip()] = raw.strip()
    return pairs


class WebhookTarget(BaseModel):
    """One webhook endpoint and which alert transitions it receives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, description="Unique name, used in logs and the delivery log."
    )
    kind: WebhookKind = Field(description="Message format: generic JSON, Slack, DingTalk or WeCom.")
    url: str = Field(
        repr=False, description="http(s) URL of the webhook (contains its token: keep it secret)."
    )
    secret: str | None = Field(
        default=None, repr=False, description="DingTalk 加签 secret (SEC...); only for kind 'dingtalk'."
    )
    min_severity: Severity = Field(default="warning", description="Least severity notified.")
    states: frozenset[AlertState] = Field(
        default=ALL_STATES,
        description="Transitions notified: any of opened, escalated, deescalated, resolved.",
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=300, description="Longest wait for one request.")
    max_attempts: int = Field(default=5, ge=1, le=100, description="Attempts before a message is dead.")
    backoff_seconds: float = Field(
        default=1.0, ge=0, le=MAX_BACKOFF_SECONDS, description="First retry delay; doubles, capped at 60 s."
    )

    @field_validator("name")
    @classmethod
    def _name_is_trimmed(cls, name: str) -> str:
        if name != name.strip():
            raise ValueError("must not start or end with whitespace")
        return name

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if any(char.isspace() for char in url):
            raise ValueError("must not contain whitespace")
        return url

    @field_validator("states", mode="before")
    @classmethod
    def _states_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):  # "opened,resolved" as well as a list
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("states")
    @classmethod
    def _some_state(cls, states: frozenset[AlertState]) -> frozenset[AlertState]:
        if not states:
            raise ValueError("must name at least one of opened, escalated, deescalated, resolved")
        return states

    @model_validator(mode="after")
    def _secret_for_dingtalk(self) -> "WebhookTarget":
        if self.secret is not None:
            if self.kind != "dingtalk":
                raise ValueError(f"secret is only used by kind 'dingtalk' (signed mode), not '{self.kind}'")
            if not self.secret.strip():
                raise ValueError("secret must not be empty; leave it out for an unsigned DingTalk robot")
        return self

    def accepts(self, alert: StallAlert) -> bool:
        """Whether this target is notified of ``alert`` (state and severity filters).

        The severity that counts is the higher of before and after the transition, so a target
        that only hears of critical alerts also hears when one of them is deescalated or resolved.
        """
        severity = max(
            _SEVERITY_RANK[alert.severity],
            _SEVERITY_RANK[alert.previous_severity] if alert.previous_severity else 0,
        )
        return alert.state in self.states and severity >= _SEVERITY_RANK[self.min_severity]

    def backoff(self, failed_attempts: int) -> float:
        """Delay before the next attempt after ``failed_attempts`` failures: 1, 2, 4, ... capped at 60 s."""
        return float(min(self.backoff_seconds * 2 ** (failed_attempts - 1), MAX_BACKOFF_SECONDS))


def parse_targets(entries: Iterable[Any]) -> list[WebhookTarget]:
    """Validate raw webhook entries (``Settings.webhook_entries()``); names must be unique.

    Raises ValueError naming the entry (``webhooks[i]``, 0-based, with its name when known) and
    the field, e.g. ``webhooks[1] ('sales-slack').url: must be an http:// or https:// URL``.
    """
    targets: list[WebhookTarget] = []
    first_index: dict[str, int] = {}
    problems: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(
                f"webhooks[{index}]: must be an object/table with name, kind and url, got {type(entry).__name__}"
            )
            continue
        label = f"webhooks[{index}]"
        if isinstance(entry.get("name"), str):
            label += f" ({entry['name']!r})"
        try:
            target = WebhookTarget.model_validate(entry)
        except ValidationError as error:
            for issue in error.errors():
                field = ".".join(str(part) for part in issue["loc"]) if issue["loc"] else ""
                message = issue["msg"].removeprefix("Value error, ")
                shown = "" if field in ("url", "secret", "") else f" (got {issue.get('input')!r})"
                problems.append(f"{label}{'.' + field if field else ''}: {message}{shown}")
            continue
        if target.name in first_index:
            problems.append(
                f"{label}.name: duplicate name {target.name!r} (also webhooks[{first_index[target.name]}]); "
                "names must be unique"
            )
            continue
        first_index[target.name] = index
        targets.append(target)
    if problems:
        raise ValueError("invalid webhook configuration:\n  " + "\n  ".join(problems))
    return targets


class Settings(BaseSettings):
    """salespulse settings (environment prefix ``SALESPULSE_``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # --- Kafka -------------------------------------------------------------------------
    app_id: str = Field(default="salespulse", pattern=r"^[A-Za-z0-9._-]+$", description="Consumer group id.")
    broker: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]."
    )
    topic_prefix: str = Field(default="crm.", pattern=r"^[A-Za-z0-9._-]*$")
    topic_partitions: int = Field(
        default=4, ge=1, le=1024, description="Partitions of topics salespulse creates."
    )
    topic_replication: int = Field(default=1, ge=1, le=16)
    broker_session_timeout_seconds: float = Field(default=10.0, gt=0)
    broker_rebalance_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- ClickHouse ----------------------------------------------------------------------
    clickhouse_url: str | None = Field(
        default=None,
        description="chdb:///path (embedded engine) or http(s)://user:password@host:port; "
        "empty means the embedded engine under data_dir.",
    )
    clickhouse_database: str = Field(default="salespulse", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    data_dir: Path = Field(default=Path(".salespulse"))
    table_store: Literal["memory", "rocksdb"] = Field(
        default="memory",
        description="Store of the worker's Faust tables: memory (embedded) or rocksdb (production, "
        "under data_dir/tables).",
    )
    table_consistency_check: bool = Field(
        default=True,
        description="Faust's check at start that a RocksDB table is not ahead of its changelog topic. "
        "Keep it on with Kafka; the embedded broker under-reports the end of a partition written in "
        "multi-record batches, which trips it.",
    )

    broker_storage: str = Field(
        default="memory://tansu/",
        description="Storage of the embedded broker of `up` (a Tansu storage URL): memory://tansu/ (default, "
        "lost when the broker process dies), s3://bucket/ or postgres://user:password@host/db.",
    )
    stop_drain_timeout_seconds: float = Field(
        default=120.0,
        ge=0,
        le=86_400,
        description="On a clean stop of `up`: longest wait for the worker to write everything the broker holds.",
    )

    # --- Semantics -------------------------------------------------------------------------
    reporting_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    currency_rates: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=dict,
        description="Units of the reporting currency per unit of each other currency, e.g. EUR=1.08.",
    )
    reporting_timezone: str = "UTC"
    stage_probabilities: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_STAGE_PROBABILITIES)
    )
    clock: Literal["wall", "event"] = Field(
        default="wall", description="'wall': now is the wall clock; 'event': now is the latest occurred_at."
    )

    # --- Stalled opportunities (contract §6) ---------------------------------------------------------
    stall_idle_days: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="Days without linked activity before an open deal is idle, per stage.",
    )
    stall_stage_days: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, description="Days in one stage before a deal is stuck, per stage."
    )
    stall_overdue_critical_days: int | None = Field(default=None, ge=0, le=3650)
    stall_rules_file: Path | None = Field(
        default=None,
        description="TOML file with [idle_days], [stage_days], overdue_critical_days, [[webhooks]].",
    )
    stall_check_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    followup_check_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the follow-ups gauge is refreshed from the followup_due view.",
    )
    webhooks: str | None = Field(default=None, description="JSON list of webhook targets (see README).")
    notify_max_age_hours: float = Field(
        default=24.0,
        gt=0,
        description="Transitions older than this (event time) go to the topic, not to webhooks.",
    )

    # --- Ingest ------------------------------------------------------------------------------
    flush_interval_seconds: float = Field(default=0.25, gt=0, le=60)  # freshness p95 < 1 s at 1,000/s
    max_batch_events: int = Field(default=20_000, ge=1, le=1_000_000)
    max_event_bytes: int = Field(default=65_536, ge=256, le=10_000_000)

    # --- Web ----------------------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    sql_host: str = "127.0.0.1"
    sql_port: int = Field(default=8123, ge=0, le=65535, description="0 disables the query endpoint.")
    # Limits of the embedded query endpoint, whose queries run in the worker's process: one careless
    # BI query must not take the cores or the memory that ingest needs. 0 means unlimited.
    sql_max_execution_seconds: float = Field(
        default=30.0, ge=0, le=86_400, description="Longest run of one query (ClickHouse max_execution_time)."
    )
    sql_max_memory_bytes: int = Field(
        default=1 << 30, ge=0, description="Memory one query may use (ClickHouse max_memory_usage)."
    )
    sql_max_rows_to_read: int = Field(
        default=1_000_000_000, ge=0, description="Rows one query may read (ClickHouse max_rows_to_read)."
    )
    sql_max_bytes_to_read: int = Field(
        default=100 << 30, ge=0, description="Bytes one query may read (ClickHouse max_bytes_to_read)."
    )
    sql_max_result_rows: int = Field(
        default=1_000_000, ge=0, description="Rows one result may hold (ClickHouse max_result_rows)."
    )
    sql_max_result_bytes: int = Field(
        default=256 << 20, ge=0, description="Bytes one result may hold (ClickHouse max_result_bytes)."
    )
    sql_max_threads: int = Field(
        default=0, ge=0, le=1024, description="Threads one query may use; 0: half the cores, at least 1."
    )
    sql_max_concurrent_queries: int = Field(
        default=0, ge=0, le=1024, description="Queries run at once; 0: half the cores, at least 1."
    )
    sql_queue_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="How long a query beyond the concurrency limit waits before it is refused.",
    )

    # --- Manager page (`salespulse ui`, SPEC §9) ------------------------------------------------
    ui_host: str = Field(default="127.0.0.1", description="Interface the manager page listens on.")
    ui_port: int = Field(
        default=8080, ge=0, le=65535, description="Port of the manager page; 0: `up` does not start it."
    )
    ui_base_path: str = Field(
        default="",
        description="Path prefix the page is served under behind a reverse proxy that keeps it, e.g. /salespulse.",
    )
    # Plain strings, not SecretStr: `up` hands settings to its children as environment variables.
    ui_token: str | None = Field(
        default=None, repr=False, description="Bearer token the page's JSON API requires (16+ characters)."
    )
    ui_basic_auth: str | None = Field(
        default=None, repr=False, description="user:password for HTTP basic auth on the page and its API."
    )
    ui_clickhouse_url: str | None = Field(
        default=None,
        repr=False,
        description="ClickHouse the page reads, with read-only credentials (http(s)://reader:password@host:port); "
        "default: SALESPULSE_CLICKHOUSE_URL when it is a server, else the query endpoint of `up`.",
    )
    ui_refresh_seconds: float = Field(default=5.0, ge=1, le=3600, description="How often the page refreshes.")

    @field_validator("ui_token", "ui_basic_auth", "ui_clickhouse_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # docker-compose passes `VAR: ${VAR:-}` as an empty string when the operator set nothing.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ui_base_path")
    @classmethod
    def _base_path_is_a_clean_prefix(cls, path: str) -> str:
        trimmed = path.strip().rstrip("/")
        if not trimmed:
            return ""
        segments = trimmed.split("/")
        if (
            segments[0] != ""
            or any(segment in ("", ".", "..") for segment in segments[1:])
            or not all(_PATH_SEGMENT.fullmatch(segment) for segment in segments[1:])
        ):
            raise ValueError(
                f"'{path}' is not a path prefix; write it like /salespulse (letters, digits, . _ ~ - between slashes)"
            )
        return trimmed

    @field_validator("ui_token")
    @classmethod
    def _token_is_long_enough(cls, token: str | None) -> str | None:
        if token is not None and (len(token) < 16 or token != token.strip()):
            raise ValueError("the token must be at least 16 characters, without surrounding spaces")
        return token

    @field_validator("ui_basic_auth")
    @classmethod
    def _basic_auth_is_user_and_password(cls, value: str | None) -> str | None:
        if value is not None:
            user, sep, password = value.partition(":")
            if not sep or not user or not password:
                raise ValueError("write it as user:password (both non-empty)")
        return value

    @field_validator("ui_clickhouse_url")
    @classmethod
    def _page_reads_a_server(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(
                "the page reads ClickHouse over HTTP: give http(s)://user:password@host:port "
                "(the embedded engine is reached through the worker's query endpoint)"
            )
        return url

    @property
    def ui_url(self) -> str:
        """Where a browser on this machine opens the manager page."""
        host = "127.0.0.1" if self.ui_host in ("0.0.0.0", "::", "") else self.ui_host
        return f"http://{host}:{self.ui_port}{self.ui_base_path}/"

    # --- end of the manager page's settings -----------------------------------------------------

    # --- Ingestion gateway (`salespulse gateway`, SPEC §8) ----------------------------------------
    ingest_host: str = Field(default="127.0.0.1", description="Interface the gateway listens on.")
    ingest_port: int = Field(
        default=8088, ge=0, le=65535, description="Port of the ingestion gateway; 0: `up` does not start it."
    )
    # name=token pairs, kept as text: `up` hands settings to its children as environment variables.
    ingest_tokens: str | None = Field(
        default=None,
        repr=False,
        description="Named bearer tokens of the gateway: name=token,name=token (16+ characters each).",
    )
    ingest_tokens_file: Path | None = Field(
        default=None, description="File of name=token lines (# comments), read at start-up."
    )
    ingest_sources_file: Path | None = Field(
        default=None,
        description="TOML file of the CRM sources of /v1/webhooks/<kind>/<source> (credentials and value "
        "maps; docs/crm/). Without it the webhook endpoints answer 404.",
    )
    ingest_max_events: int = Field(
        default=1000, ge=1, le=100_000, description="Most events or records in one request (else 413)."
    )
    ingest_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest request body (else 413)."
    )
    ingest_timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="Longest wait for the broker's acknowledgements (else 503)."
    )
    ingest_idempotence: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Idempotent producer: 'auto' uses it when the broker supports it (Apache Kafka does, "
        "the embedded broker does not).",
    )

    @field_validator("ingest_tokens", mode="before")
    @classmethod
    def _empty_tokens_are_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ingest_tokens")
    @classmethod
    def _tokens_are_named(cls, text: str | None) -> str | None:
        if text is not None:
            parse_ingest_tokens(text, "SALESPULSE_INGEST_TOKENS")
        return text

    @field_validator("ingest_tokens_file")
    @classmethod
    def _tokens_file_is_valid(cls, path: Path | None) -> Path | None:
        if path is not None:
            load_ingest_tokens_file(path)
        return path

    def ingest_token_names(self) -> dict[str, str]:
        """Every gateway token (name → token): SALESPULSE_INGEST_TOKENS plus the tokens file."""
        tokens = load_ingest_tokens_file(self.ingest_tokens_file) if self.ingest_tokens_file else {}
        if self.ingest_tokens:
            for name, token in parse_ingest_tokens(self.ingest_tokens, "SALESPULSE_INGEST_TOKENS").items():
                if name in tokens:
                    raise ValueError(
                        f"gateway token name '{name}' is given twice (SALESPULSE_INGEST_TOKENS and the tokens file)"
                    )
                tokens[name] = token
        return tokens

    @property
    def ingest_url(self) -> str:
        """Where a client on this machine reaches the gateway."""
        host = "127.0.0.1" if self.ingest_host in ("0.0.0.0", "::", "") else self.ingest_host
        return f"http://{host}:{self.ingest_port}"

    clickhouse_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest wait for one ClickHouse request before it is retried.",
    )
    faults: str | None = Field(
        default=None, description="Fault injection for the reliability suite; never set it."
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    @field_validator(
        "currency_rates", "stage_probabilities", "stall_idle_days", "stall_stage_days", mode="before"
    )
    @classmethod
    def _mapping_from_text(cls, value: Any) -> Any:
        return _parse_mapping(value)

    @field_validator("currency_rates")
    @classmethod
    def _rates_are_positive_codes(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in rates.items():
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"'{code}' is not an ISO 4217 currency code (three capital letters)")
            if not rate.is_finite() or rate <= 0:
                raise ValueError(f"rate for {code} must be a positive number, got {rate}")
        return rates

    @field_validator("stage_probabilities")
    @classmethod
    def _probabilities_cover_open_stages(cls, probabilities: dict[str, Decimal]) -> dict[str, Decimal]:
        unknown = set(probabilities) - set(OPEN_STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)}; open stages are {list(OPEN_STAGES)}")
        merged = {**DEFAULT_STAGE_PROBABILITIES, **probabilities}
        for stage, probability in merged.items():
            if not Decimal(0) <= probability <= Decimal(1) or probability.as_tuple().exponent < -4:  # type: ignore[operator]
                raise ValueError(f"probability for {stage} must be between 0 and 1 with at most 4 decimals")
        return {stage: merged[stage] for stage in OPEN_STAGES}

    @field_validator("stall_idle_days", "stall_stage_days")
    @classmethod
    def _days_per_open_stage(cls, days: dict[str, int]) -> dict[str, int]:
        return _check_days_per_stage(days)

    @field_validator("stall_rules_file")
    @classmethod
    def _rules_file_is_valid(cls, path: Path | None) -> Path | None:
        if path is not None:
            load_rules_file(path)  # reports every problem at start-up, not at the first stall
        return path

    @field_validator("reporting_timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{name}' is not an IANA time zone name such as UTC or Asia/Shanghai") from None
        return name

    @model_validator(mode="after")
    def _webhooks_are_valid(self) -> "Settings":
        parse_targets(self.webhook_entries())  # every problem reported at start-up
        return self

    @model_validator(mode="after")
    def _reporting_currency_has_no_rate(self) -> "Settings":
        if (
            self.reporting_currency in self.currency_rates
            and self.currency_rates[self.reporting_currency] != 1
        ):
            raise ValueError(
                f"currency_rates gives {self.reporting_currency} a rate, but it is the reporting currency (rate 1)"
            )
        return self

    def stall_rules(self) -> StallRules:
        """Thresholds: the contract's defaults (§6), then the rules file, then SALESPULSE_STALL_* variables."""
        from_file = load_rules_file(self.stall_rules_file) if self.stall_rules_file else {}
        critical_days = self.stall_overdue_critical_days
        if critical_days is None:
            critical_days = from_file.get("overdue_critical_days", DEFAULT_OVERDUE_CRITICAL_DAYS)
        return StallRules(
            idle_days={**DEFAULT_IDLE_DAYS, **from_file.get("idle_days", {}), **self.stall_idle_days},
            stage_days={**DEFAULT_STAGE_DAYS, **from_file.get("stage_days", {}), **self.stall_stage_days},
            overdue_critical_days=critical_days,
            timezone=self.reporting_timezone,
        )

    def webhook_entries(self) -> list[Any]:
        """Webhook targets as configured: SALESPULSE_WEBHOOKS (JSON list) plus the rules file's [[webhooks]]."""
        entries: list[Any] = list(orjson.loads(self.webhooks)) if self.webhooks else []
        if self.stall_rules_file:
            entries += load_rules_file(self.stall_rules_file).get("webhooks", [])
        return entries

    # --- Derived -------------------------------------------------------------------------------
    @property
    def effective_clickhouse_url(self) -> str:
        """The ClickHouse to use; the embedded engine under data_dir unless one is configured."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def uses_embedded_clickhouse(self) -> bool:
        return self.effective_clickhouse_url.startswith("chdb:")

    def rate_for(self, currency: str) -> Decimal | None:
        """Units of the reporting currency per unit of ``currency``; None when not configured."""
        if currency == self.reporting_currency:
            return Decimal(1)
        return self.currency_rates.get(currency)


def _check_days_per_stage(days: dict[str, int]) -> dict[str, int]:
    unknown = set(days) - set(OPEN_STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; open stages are {list(OPEN_STAGES)}")
    for stage, value in days.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
            raise ValueError(f"days for {stage} must be a whole number from 1 to 3650, got {value!r}")
    return days


_TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_TOKEN_LENGTH = 16


def parse_ingest_tokens(text: str, where: str) -> dict[str, str]:
    """``name=token`` pairs, separated by commas or new lines; ``#`` starts a comment line.

    Names become the ``source`` of events that have none, so they are short identifiers.
    Errors name the entry but never show a token.
    """
    tokens: dict[str, str] = {}
    entries = [part.strip() for line in text.splitlines() for part in line.split(",")]
    for number, entry in enumerate(entries, start=1):
        if not entry or entry.startswith("#"):
            continue
        name, sep, token = (part.strip() for part in entry.partition("="))
        if not sep:
            raise ValueError(f"{where}: entry {number} is not name=token (value not shown)")
        if not _TOKEN_NAME.fullmatch(name):
            raise ValueError(f"{where}: token name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if len(token) < MIN_TOKEN_LENGTH or any(char.isspace() for char in token):
            raise ValueError(
                f"{where}: the token named '{name}' must be at least {MIN_TOKEN_LENGTH} characters without spaces"
            )
        if name in tokens:
            raise ValueError(f"{where}: token name '{name}' is given twice")
        tokens[name] = token
    return tokens


def load_ingest_tokens_file(path: Path) -> dict[str, str]:
    """Read a gateway tokens file (``name=token`` per line); errors name the file, never a token."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"gateway tokens file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read gateway tokens file {path}: {error}") from None
    return parse_ingest_tokens(text, f"gateway tokens file {path}")


def load_rules_file(path: Path) -> dict[str, Any]:
    """Read and check a stall rules file (TOML); every error names the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"stall rules file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read stall rules file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"stall rules file {path} is not valid TOML: {error}") from None
    known = {"idle_days", "stage_days", "overdue_critical_days", "webhooks"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(
            f"stall rules file {path}: unknown key(s) {sorted(unknown)}; expected {sorted(known)}"
        )
    for table in ("idle_days", "stage_days"):
        if table in data:
            if not isinstance(data[table], dict):
                raise ValueError(f"stall rules file {path}: [{table}] must be a table of stage = days")
            try:
                _check_days_per_stage(data[table])
            except ValueError as error:
                raise ValueError(f"stall rules file {path}, [{table}]: {error}") from None
    critical = data.get("overdue_critical_days", DEFAULT_OVERDUE_CRITICAL_DAYS)
    if isinstance(critical, bool) or not isinstance(critical, int) or not 0 <= critical <= 3650:
        raise ValueError(
            f"stall rules file {path}: overdue_critical_days must be a whole number, got {critical!r}"
        )
    if not isinstance(data.get("webhooks", []), list):
        raise ValueError(f"stall rules file {path}: webhooks must be an array of tables ([[webhooks]])")
    return data


def describe_settings_error(error: ValidationError) -> str:
    """A message a person can act on: which variable, which value, what is expected."""
    lines = ["Invalid settings:"]
    for issue in error.errors():
        field = str(issue["loc"][0]) if issue["loc"] else "settings"
        variable = f"{ENV_PREFIX}{field.upper()}"
        value = issue.get("input")
        shown = "" if isinstance(value, dict) and field == "settings" else f" = {value!r}"
        if field in SECRET_FIELDS:
            shown = " (value not shown)"
        message = issue["msg"].removeprefix("Value error, ")
        lines.append(f"  {variable}{shown}: {message}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI overrides (None means 'not given')."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
