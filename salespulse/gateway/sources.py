"""The CRM sources of the gateway's webhook endpoints, from a TOML file (``SALESPULSE_INGEST_SOURCES_FILE``).

Each ``[sources.<name>]`` table configures one CRM account posting to
``/v1/webhooks/<kind>/<name>``: its credentials and the maps that turn the CRM's own values
into contract values. A value the maps do not cover is refused (:class:`Unmapped`), never
guessed: the item is rejected with a reason and goes to the DLQ. The format is described in
docs/crm/ and shown in examples/sources.toml.
"""

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from salespulse.schemas.events import FUNNEL_STAGES

SourceKind = Literal["hubspot", "salesforce", "pipedrive"]
CALL_OUTCOMES = ("connected", "no_answer", "busy", "voicemail")
VISIT_OUTCOMES = ("completed", "cancelled", "no_show")
# An outcome mapped to PENDING is not an outcome yet (a meeting still scheduled): the activity
# waits for its final outcome.
PENDING = "pending"


class Unmapped(ValueError):
    """A CRM value the source's maps do not cover: the item is rejected with ``reason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _default_activity_types() -> dict[str, Literal["call", "visit"]]:
    return {"call": "call", "meeting": "visit"}


class Source(BaseModel):
    """One configured CRM source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: SourceKind
    # HubSpot signs requests with the app's client secret (signature v3).
    client_secret: str | None = Field(default=None, min_length=8, repr=False)
    # Salesforce and Pipedrive do not sign: a bearer token or basic-auth credentials authenticate.
    token: str | None = Field(default=None, min_length=16, repr=False)
    basic_auth: str | None = Field(default=None, repr=False, description="user:password")
    # The exact URL configured in HubSpot, when a proxy in front of the gateway changes it.
    signed_url: str | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    id_prefix: str = Field(default="", max_length=32)
    stages: dict[str, str] = Field(default_factory=dict)
    owners: dict[str, str] = Field(default_factory=dict)
    call_outcomes: dict[str, str] = Field(default_factory=dict)
    meeting_outcomes: dict[str, str] = Field(default_factory=dict)
    # Pipedrive: which activity types are calls and which are visits (others are ignored).
    activity_types: dict[str, Literal["call", "visit"]] = Field(default_factory=_default_activity_types)
    # Pipedrive activities carry no call direction: the source says which one its calls have.
    call_direction: Literal["outbound", "inbound"] | None = None
    # Salesforce Events have no standard outcome field: name the (custom) field that has it.
    meeting_outcome_field: str | None = None

    @field_validator("stages")
    @classmethod
    def _stages_are_funnel_stages(cls, stages: dict[str, str]) -> dict[str, str]:
        wrong = {crm: stage for crm, stage in stages.items() if stage not in FUNNEL_STAGES}
        if wrong:
            raise ValueError(f"stages map to funnel stages ({', '.join(FUNNEL_STAGES)}), not {wrong}")
        return stages

    @field_validator("call_outcomes")
    @classmethod
    def _call_outcomes(cls, outcomes: dict[str, str]) -> dict[str, str]:
        return _check_outcomes(outcomes, CALL_OUTCOMES)

    @field_validator("meeting_outcomes")
    @classmethod
    def _meeting_outcomes(cls, outcomes: dict[str, str]) -> dict[str, str]:
        return _check_outcomes(outcomes, VISIT_OUTCOMES)

    @field_validator("basic_auth")
    @classmethod
    def _user_and_password(cls, value: str | None) -> str | None:
        if value is not None and (":" not in value or len(value.split(":", 1)[1]) < 8):
            raise ValueError("basic_auth is 'user:password', with a password of 8+ characters")
        return value

    def check_credentials(self) -> None:
        if self.kind == "hubspot" and not self.client_secret:
            raise ValueError(f"source '{self.name}': a hubspot source needs client_secret (the app's)")
        if self.kind != "hubspot" and not (self.token or self.basic_auth):
            raise ValueError(f"source '{self.name}': a {self.kind} source needs token or basic_auth")

    # --- the maps --------------------------------------------------------------------------------

    def ids(self, crm_id: object) -> str:
        """A CRM object id as salespulse writes it (deal, customer and activity ids)."""
        return f"{self.id_prefix}{crm_id}"

    def stage(self, crm_stage: str) -> str:
        if crm_stage not in self.stages:
            raise Unmapped(
                "unmapped_stage",
                f"source '{self.name}': CRM stage '{crm_stage}' has no mapping; add it under "
                f"[sources.{self.name}.stages] (one of {', '.join(FUNNEL_STAGES)}) and ask the CRM to resend",
            )
        return self.stages[crm_stage]

    def rep(self, owner: str) -> str:
        if owner not in self.owners:
            raise Unmapped(
                "unmapped_owner",
                f"source '{self.name}': CRM owner '{owner}' has no rep_id; add \"{owner}\" = \"<rep_id>\" "
                f"under [sources.{self.name}.owners]",
            )
        return self.owners[owner]

    def outcome(self, kind: Literal["call", "visit"], crm_value: str) -> str | None:
        """The contract outcome; None while the CRM value means 'not happened yet' (``pending``)."""
        table, name = (
            (self.call_outcomes, "call_outcomes")
            if kind == "call"
            else (self.meeting_outcomes, "meeting_outcomes")
        )
        if crm_value not in table:
            allowed = CALL_OUTCOMES if kind == "call" else VISIT_OUTCOMES
            raise Unmapped(
                "unmapped_outcome",
                f"source '{self.name}': {'call' if kind == 'call' else 'meeting'} outcome '{crm_value}' has no "
                f"mapping; add it under [sources.{self.name}.{name}] (one of {', '.join(allowed)}, or {PENDING})",
            )
        mapped = table[crm_value]
        return None if mapped == PENDING else mapped


def _check_outcomes(outcomes: dict[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    wrong = {crm: value for crm, value in outcomes.items() if value not in (*allowed, PENDING)}
    if wrong:
        raise ValueError(f"outcomes map to {', '.join(allowed)} or {PENDING}, not {wrong}")
    return outcomes


def load_sources(path: Path) -> dict[str, Source]:
    """Every source of the file, by name; raises ValueError naming the source and the problem."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"cannot read the sources file {path}: {error}") from None
    tables = document.get("sources")
    if not isinstance(tables, dict) or not tables:
        raise ValueError(f"the sources file {path} has no [sources.<name>] tables")
    sources: dict[str, Source] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: sources.{name} must be a table")
        try:
            source = Source(name=name, **table)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}" for issue in error.errors()
            )
            raise ValueError(f"{path}: source '{name}': {problems}") from None
        source.check_credentials()
        sources[name] = source
    return sources
