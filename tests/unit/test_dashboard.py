"""The Grafana dashboard only charts metrics the code defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["command_service", "query_service", "projector", "shared", "operations"]


def defined_metrics() -> set[str]:
    names = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r'(?:Counter|Gauge|Histogram)\(\s*"(cqrs_[a-z_]+)"',
                                    path.read_text()))
    return names


def test_every_metric_on_the_dashboard_is_defined_in_the_code():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/cqrs-accounts.json").read_text())
    defined = defined_metrics()
    charted = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"cqrs_[a-z_]+", target["expr"]):
                charted.add(re.sub(r"_(bucket|count|sum)$", "", name))
    missing = charted - defined
    assert not missing, f"charted but never defined: {sorted(missing)}"
    assert len(dashboard["panels"]) >= 12
