"""Settings: one prefix, clear errors for every bad value."""

import os
from decimal import Decimal

import pytest
from pydantic import ValidationError

from salespulse.config import ENV_PREFIX, Settings, describe_settings_error, load_settings


@pytest.fixture(autouse=True)
def no_salespulse_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the variables it sets, not whatever SALESPULSE_* the shell exported."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_defaults_match_the_spec() -> None:
    settings = Settings()
    assert settings.reporting_currency == "USD"
    assert settings.reporting_timezone == "UTC"
    assert settings.clock == "wall"
    assert settings.stage_probabilities == {
        "prospecting": Decimal("0.10"),
        "qualified": Decimal("0.25"),
        "proposal": Decimal("0.50"),
        "negotiation": Decimal("0.75"),
    }
    assert settings.uses_embedded_clickhouse


def test_environment_and_both_mapping_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_CURRENCY_RATES", "EUR=1.08, CNY=0.14")
    monkeypatch.setenv("SALESPULSE_STAGE_PROBABILITIES", '{"proposal": "0.4"}')
    settings = load_settings(web_port=7000, broker=None)
    assert settings.currency_rates == {"EUR": Decimal("1.08"), "CNY": Decimal("0.14")}
    assert settings.stage_probabilities["proposal"] == Decimal("0.4")
    assert settings.stage_probabilities["negotiation"] == Decimal("0.75")
    assert settings.web_port == 7000
    assert settings.rate_for("USD") == 1 and settings.rate_for("JPY") is None


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "SALESPULSE_FLUSH_INTERVAL_SECONDS",
            "soon",
            "SALESPULSE_FLUSH_INTERVAL_SECONDS = 'soon': Input should be",
        ),
        ("SALESPULSE_REPORTING_TIMEZONE", "Mars/Base", "is not an IANA time zone name"),
        ("SALESPULSE_CURRENCY_RATES", "EUR", "is not KEY=VALUE"),
        ("SALESPULSE_CURRENCY_RATES", "EUR=-1", "rate for EUR must be a positive number"),
        ("SALESPULSE_STAGE_PROBABILITIES", "won=1", "unknown stage"),
        ("SALESPULSE_WEB_PORT", "70000", "SALESPULSE_WEB_PORT = '70000'"),
        ("SALESPULSE_CLOCK", "sundial", "SALESPULSE_CLOCK"),
    ],
)
def test_bad_values_are_explained(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert expected in describe_settings_error(caught.value)


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().web_port = 1  # type: ignore[misc]
