"""The alert rules (deploy/alerts.yml) fire on what they say, tested with Prometheus's own
`promtool test rules`; every alert has a firing case and a runbook entry, and the compose
Prometheus loads the file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "alerts.yml"
CASES = ROOT / "tests" / "fixtures" / "alerts" / "alerts_test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's `prometheus` package has it; "
                             ".ci/run installs it)")


def _alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


@needs_promtool
def test_the_rule_file_is_valid():
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_each_alert_fires_exactly_when_its_condition_holds():
    tested = subprocess.run([PROMTOOL, "test", "rules", str(CASES)], capture_output=True,
                            text=True, timeout=120, cwd=CASES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_firing_case_and_a_runbook_entry():
    cases = yaml.safe_load(CASES.read_text())["tests"]
    fired = {check["alertname"] for case in cases for check in case["alert_rule_test"]
             if check.get("exp_alerts")}
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9]+", "", heading.lower())
               for heading in re.findall(r"^## (.+)$", runbook, re.MULTILINE)}
    for alert in _alerts():
        assert alert["alert"] in fired, f"no test case makes {alert['alert']} fire"
        link = alert["annotations"]["runbook"]
        assert link == f"docs/runbook.md#{alert['alert'].lower()}", link
        assert alert["alert"].lower() in anchors, f"docs/runbook.md has no ## {alert['alert']}"


def test_the_compose_prometheus_loads_the_rules():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1)
                  for volume in compose["services"]["prometheus"]["volumes"])
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    [rule_file] = config["rule_files"]
    assert mounts["./deploy/alerts.yml"] == rule_file


def test_the_dashboard_charts_every_signal_an_alert_watches():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" /
                            "cqrs-accounts.json").read_text())
    charted = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"cqrs_[a-z_]+", target["expr"])}
    for alert in _alerts():
        watched = set(re.findall(r"cqrs_[a-z_]+", alert["expr"]))
        assert watched <= charted, f"{alert['alert']} watches {watched - charted}, not charted"
