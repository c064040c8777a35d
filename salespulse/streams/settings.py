"""Every setting of salespulse: one frozen pydantic-settings model, validated at start-up.

Each field is read from the environment variable ``SALESPULSE_<FIELD>`` (upper case) and
may be overridden by a CLI flag. A bad value stops start-up with a message naming the
variable, the value and what is expected (see :func:`describe_settings_error`).
"""

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from salespulse.schemas.events import OPEN_STAGES
from salespulse.streams.stalls import (
    DEFAULT_IDLE_DAYS,
    DEFAULT_OVERDUE_CRITICAL_DAYS,
    DEFAULT_STAGE_DAYS,
    StallRules,
)

ENV_PREFIX = "SALESPULSE_"

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

    # --- Stalled opportunities (SPEC §6) ---------------------------------------------------------
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
        from salespulse.sinks.webhooks import parse_targets  # the target model lives with the notifier

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
        """Thresholds: the SPEC defaults, then the rules file, then SALESPULSE_STALL_* variables."""
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
        message = issue["msg"].removeprefix("Value error, ")
        lines.append(f"  {variable}{shown}: {message}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI overrides (None means 'not given')."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
