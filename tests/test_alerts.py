"""Every alert of the chart, evaluated by Prometheus's own rule engine (`promtool test rules`):
each fires on the series that should fire it, with its runbook, and the over-budget alert still
evaluates while two replicas export the same policy (the overlap of a failover)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "helm" / "gridshift" / "files" / "alerts.yaml"
TESTS = ROOT / "tests" / "alerts" / "alerts_test.yaml"

promtool = shutil.which("promtool")
if promtool is None and not os.environ.get("CI"):
    pytest.skip("promtool is not installed (apt-get install prometheus); CI installs it", allow_module_level=True)


def test_every_alert_fires_as_its_test_says() -> None:
    assert promtool is not None
    out = subprocess.run([promtool, "test", "rules", TESTS.name], cwd=TESTS.parent, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_test_and_a_runbook_section() -> None:
    alerts = [r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    tested = {a["alertname"] for t in yaml.safe_load(TESTS.read_text())["tests"] for a in t["alert_rule_test"]}
    assert set(alerts) <= tested, f"alerts without a promtool test: {set(alerts) - tested}"
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    for rule in (r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]):
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert f"## {rule['alert']}\n" in runbooks and anchor == rule["alert"].lower(), rule["alert"]
