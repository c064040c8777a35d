"""The manager page's settings: a clean path prefix, credentials that are never echoed."""

import os

import pytest
from pydantic import ValidationError

from salespulse.config import ENV_PREFIX, Settings, describe_settings_error


@pytest.fixture(autouse=True)
def no_salespulse_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("given", "kept"), [("", ""), ("/", ""), ("/salespulse/", "/salespulse"), ("/a/b-c.d~e", "/a/b-c.d~e")]
)
def test_the_base_path_is_kept_without_its_trailing_slash(given: str, kept: str) -> None:
    settings = Settings(ui_base_path=given, ui_port=9000)
    assert settings.ui_base_path == kept
    assert settings.ui_url == f"http://127.0.0.1:9000{kept}/"


@pytest.mark.parametrize("bad", ["salespulse", "/a//b", "/a/../b", "/a b", "/ü"])
def test_a_base_path_that_is_not_a_clean_prefix_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="is not a path prefix"):
        Settings(ui_base_path=bad)


def test_credentials_are_checked_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_UI_TOKEN", "short-secret")
    monkeypatch.setenv("SALESPULSE_UI_BASIC_AUTH", "no-colon-secret")
    monkeypatch.setenv("SALESPULSE_UI_CLICKHOUSE_URL", "chdb:///tmp/secret-path")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_settings_error(caught.value)
    assert "SALESPULSE_UI_TOKEN (value not shown): the token must be at least 16 characters" in message
    assert "SALESPULSE_UI_BASIC_AUTH (value not shown): write it as user:password" in message
    assert "SALESPULSE_UI_CLICKHOUSE_URL (value not shown): the page reads ClickHouse over HTTP" in message
    assert "secret" not in message


def test_empty_credentials_mean_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UI_TOKEN", "UI_BASIC_AUTH", "UI_CLICKHOUSE_URL"):
        monkeypatch.setenv(f"SALESPULSE_{name}", "")
    settings = Settings()
    assert (settings.ui_token, settings.ui_basic_auth, settings.ui_clickhouse_url) == (None, None, None)
    assert "x" * 20 not in repr(Settings(ui_token="x" * 20))  # kept out of logs and tracebacks
