"""Silent nodes: an exporter that stops reporting must not read as 0 W. One control period of the
operator against the real API server and a real Prometheus scraping the telemetry twin, with two
of the site's four nodes silenced in the twin (their series vanish, as when dcgm-exporter dies)."""

from __future__ import annotations

import time

import pytest

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.devcluster.lab import Site, policy, prom_query
from gridshift.operator.control import PolicyController
from tests.conftest import eventually
from tests.integration.conftest import Lab

pytestmark = pytest.mark.cluster


def _spec(lab: Lab, site: Site, namespace: str, **telemetry: float) -> PowerPolicySpec:
    doc = policy(f"pp-{namespace}", site.name, namespace, lab.prometheus_url, cap=11_000, trigger=10_000,
                 dry_run=True)["spec"]
    doc["telemetry"].update(telemetry)
    return PowerPolicySpec.model_validate(doc)


def _power(lab: Lab, site: Site) -> float:
    result = prom_query(lab.prometheus_url, site.power_query)
    return float(result[0]["value"][1]) if result else 0.0


def _condition(status: dict, type_: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_silent_nodes_are_named_and_never_read_as_zero(lab: Lab, site: Site, namespace: str) -> None:
    full = eventually(lambda: _power(lab, site), 30, what="the site's idle power in Prometheus")
    strict = PolicyController(lab.kube.api)
    lenient = PolicyController(lab.kube.api)
    name = f"pp-{namespace}"
    # Every node reports: telemetry is trusted (on a Prometheus started seconds ago, within a few periods).
    before = eventually(lambda: (lambda r: r if _condition(r.status, "Degraded")["reason"] == "TelemetryOk" else None)(
        lenient.run_once(name, _spec(lab, site, namespace, minCoverageFraction=0.5), {}, now=time.time())), 30,
        interval=1, what="a period that trusts the site's telemetry")
    silent = site.nodes[:2]
    lab.twin.silent.update(silent)
    try:
        eventually(lambda: _power(lab, site) < 0.75 * full, 30, what="the silent nodes gone from the sum")

        # Every node must report by default: the policy holds and names the silent nodes.
        held = strict.run_once(name, _spec(lab, site, namespace), {}, now=time.time())
        degraded = _condition(held.status, "Degraded")
        assert (held.status["phase"], degraded["status"], degraded["reason"]) == (
            "Degraded", "True", "TelemetryIncomplete"), degraded
        assert all(node in degraded["message"] for node in silent), degraded["message"]

        # Allowed to run on half the nodes, the policy counts the silent ones at their last power.
        after = lenient.run_once(name, _spec(lab, site, namespace, minCoverageFraction=0.5), before.status,
                                 now=time.time())
        assert _condition(after.status, "Degraded")["reason"] == "TelemetryOk"
        assert after.status["observedWatts"] >= 0.95 * full, (after.status["observedWatts"], full)
        ready = _condition(after.status, "Ready")["message"]
        assert "2 of 4 governed nodes report no power" in ready and all(node in ready for node in silent), ready
    finally:
        lab.twin.silent.difference_update(silent)
