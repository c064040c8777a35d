"""The monitoring deployment files are valid and the alert rules are unit-tested.

Runs Prometheus' ``promtool`` and Alertmanager's ``amtool`` on the files under ``deploy/``:
rules and configuration syntax, the promtool unit tests of every alert, Alertmanager routing,
and checks that every alert in the rules file has a promtool case where it is expected to fire.

Needs the tools on PATH (Debian: ``apt-get install prometheus prometheus-alertmanager``; .ci/run
installs them). A missing tool fails the test rather than skipping it.
"""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "salespulse.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "salespulse.rules.test.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

INSTALL_HINT = {
    "promtool": "Debian package 'prometheus' (apt-get install -y prometheus)",
    "amtool": "Debian package 'prometheus-alertmanager' (apt-get install -y prometheus-alertmanager)",
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: install it from the {INSTALL_HINT[name]}; .ci/run does this")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [_tool(args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    print(f"$ {' '.join(args)}  (exit {result.returncode})\n{result.stdout}{result.stderr}")
    return result


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules() -> None:
    result = _run("promtool", "check", "rules", str(RULES.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = _run("promtool", "test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_check_prometheus_config() -> None:
    result = _run("promtool", "check", "config", str(PROMETHEUS_CONFIG.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_check_alertmanager_config() -> None:
    result = _run("amtool", "check-config", str(ALERTMANAGER_CONFIG.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=SalespulseWorkerDown", "severity=critical"], "on-call"),
        (["alertname=SalespulseCriticalStalledDeals", "severity=critical", "team=berlin"], "on-call"),
        (["alertname=SalespulseStalledDealsTeam", "severity=warning", "team=berlin"], "sales-channel"),
        (["alertname=SalespulseFreshnessSlow", "severity=warning"], "sales-channel"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    result = _run(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG.relative_to(ROOT)}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_wiring() -> None:
    config = _load(PROMETHEUS_CONFIG)
    rule_files = [(PROMETHEUS_CONFIG.parent / name).resolve() for name in config["rule_files"]]
    assert RULES.resolve() in rule_files
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "salespulse"]
    targets = {target for static in job["static_configs"] for target in static["targets"]}
    assert targets == {"worker-1:6066", "worker-2:6066"}
    am_targets = {
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    }
    assert am_targets == {"alertmanager:9093"}


def test_every_alert_has_severity_and_annotations() -> None:
    alerts = _alerts()
    assert alerts, f"no alerts in {RULES}"
    for rule in alerts:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert annotations.get(key), f"{name} has no {key} annotation"
        assert annotations["runbook"] == f"deploy/README.md#{name.lower()}", name


def test_every_alert_has_firing_and_silent_promtool_cases() -> None:
    alert_names = {rule["alert"] for rule in _alerts()}
    tests = _load(RULE_TESTS)
    rule_files = [(RULE_TESTS.parent / name).resolve() for name in tests["rule_files"]]
    assert RULES.resolve() in rule_files, f"{RULE_TESTS} does not load {RULES}"

    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert not fires - alert_names, f"tests expect alerts that the rules lack: {sorted(fires - alert_names)}"
    assert alert_names <= fires, (
        f"alerts with no promtool case where they fire: {sorted(alert_names - fires)}"
    )
    assert alert_names <= silent, (
        f"alerts with no promtool case where they stay quiet: {sorted(alert_names - silent)}"
    )
