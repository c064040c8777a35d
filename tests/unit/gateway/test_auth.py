"""Named bearer tokens (salespulse.gateway.auth) and their settings (salespulse.config)."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from salespulse.config import Settings, describe_settings_error
from salespulse.gateway.auth import TokenBook

BOOK = TokenBook({"hubspot-prod": "h" * 20, "nightly-import": "n" * 24})


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Bearer " + "h" * 20, "hubspot-prod"),
        ("bearer " + "n" * 24, "nightly-import"),
        ("Bearer " + "h" * 19, None),
        ("Bearer " + "h" * 21, None),
        ("Basic " + "h" * 20, None),
        ("h" * 20, None),
        ("", None),
        (None, None),
    ],
)
def test_a_request_is_named_by_its_token_or_refused(header: str | None, name: str | None) -> None:
    assert BOOK.identify(header) == name


def test_tokens_come_from_the_variable_and_the_file(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text("# gateway tokens\nnightly-import=" + "n" * 24 + "\n")
    settings = Settings(ingest_tokens="hubspot-prod=" + "h" * 20, ingest_tokens_file=file)
    assert settings.ingest_token_names() == {"nightly-import": "n" * 24, "hubspot-prod": "h" * 20}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hubspot", "not name=token"),
        ("hub spot=" + "h" * 20, "token name 'hub spot'"),
        ("a=short", "at least 16 characters"),
        ("a=" + "x" * 20 + ",a=" + "y" * 20, "given twice"),
    ],
)
def test_bad_tokens_stop_start_up_without_showing_them(text: str, problem: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(ingest_tokens=text)
    message = describe_settings_error(error.value)
    assert "SALESPULSE_INGEST_TOKENS" in message and problem in message
    for secret in ("short", "x" * 20, "h" * 20):
        assert secret not in message


def test_no_tokens_is_refused() -> None:
    with pytest.raises(ValueError, match="SALESPULSE_INGEST_TOKENS"):
        TokenBook({})
