"""The manager page in the container stack: its compose service and its read-only ClickHouse user.

``docker-compose config`` (Debian's docker-compose; no Docker engine needed) resolves the file as
Compose would; the service's environment is then loaded into salespulse's own Settings, so a
value the page would refuse at start-up fails here.
"""

import os
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from salespulse.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[3]
READER_XML = ROOT / "deploy" / "clickhouse" / "users.d" / "salespulse-reader.xml"


def resolved_compose(**environment: str) -> dict[str, Any]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: apt-get install -y docker-compose"
    result = subprocess.run(
        [tool, "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", **environment},
    )
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def test_the_ui_service_reads_with_the_read_only_user(monkeypatch: pytest.MonkeyPatch) -> None:
    services = resolved_compose(CLICKHOUSE_READER_PASSWORD="reader-secret")["services"]
    ui, clickhouse = services["ui"], services["clickhouse"]
    assert ui["command"] == ["ui"] and ui["image"] == services["worker-1"]["image"]
    env = ui["environment"]
    url = urlsplit(env["SALESPULSE_UI_CLICKHOUSE_URL"])
    assert (url.username, url.password, url.hostname, url.port) == (
        "salespulse_reader",
        "reader-secret",
        "clickhouse",
        8123,
    )
    assert "SALESPULSE_CLICKHOUSE_URL" not in env  # the workers' read-write credentials stay with them
    assert clickhouse["environment"]["CLICKHOUSE_READER_PASSWORD"] == "reader-secret"
    assert ui["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert [(int(port["published"]), int(port["target"])) for port in ui["ports"]] == [(8080, 8080)]
    assert "/health" in " ".join(ui["healthcheck"]["test"])
    mounted = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in clickhouse["volumes"]]
    assert any(str(READER_XML) in volume or "salespulse-reader.xml" in volume for volume in mounted)

    # The page would start with exactly this environment (empty credentials mean none).
    for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.ui_host == "0.0.0.0" and settings.ui_port == 8080
    assert settings.ui_token is None and settings.ui_basic_auth is None and settings.ui_base_path == ""


def test_access_control_and_prefix_pass_through_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    env = resolved_compose(
        SALESPULSE_UI_BASIC_AUTH="manager:a-password", SALESPULSE_UI_BASE_PATH="/salespulse"
    )["services"]["ui"]["environment"]
    assert env["SALESPULSE_UI_BASIC_AUTH"] == "manager:a-password"
    assert env["SALESPULSE_UI_BASE_PATH"] == "/salespulse"


def test_the_reader_user_is_read_only_and_limited_to_the_database() -> None:
    root = ElementTree.parse(READER_XML).getroot()
    user = root.find("users/salespulse_reader")
    assert user is not None
    password = user.find("password")
    assert (
        password is not None
        and password.get("from_env") == "CLICKHOUSE_READER_PASSWORD"
        and not password.text
    )
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None and profile.findtext("readonly") == "2"
    assert [db.text for db in user.findall("allow_databases/database")] == ["salespulse"]
