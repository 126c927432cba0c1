"""One control period of the operator, called directly against the real API server."""

from __future__ import annotations

import time

import pytest

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.devcluster.controlplane import free_port
from gridshift.operator.control import PolicyController
from tests.conftest import Kube

pytestmark = pytest.mark.cluster
GROUP, VERSION = "gridshift.io", "v1alpha1"


def _battery(kube: Kube, name: str, owner: str, soc: float, setpoint: float) -> None:
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "energystorages", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "EnergyStorage",
        "metadata": {"name": name, "annotations": {"gridshift.io/managed-by": owner}},
        "spec": {"capacityWattHours": 10_000, "maxDischargeWatts": 5_000, "maxChargeWatts": 2_500,
                 "setpointWatts": setpoint}})
    kube.custom.patch_cluster_custom_object_status(GROUP, VERSION, "energystorages", name,
                                                   {"status": {"socFraction": soc}})


def _blind_policy(ess: str, dry_run: bool) -> PowerPolicySpec:
    """A policy whose Prometheus does not answer, with a 25% battery reserve."""
    return PowerPolicySpec.model_validate({
        "budget": {"capWatts": 10_000},
        "telemetry": {"prometheusUrl": f"http://127.0.0.1:{free_port()}"},
        "storage": {"energyStorageRef": ess, "reserveFraction": 0.25},
        "safety": {"dryRun": dry_run},
    })


@pytest.mark.parametrize("dry_run", [False, True], ids=["acting", "dry-run"])
def test_a_blind_policy_still_keeps_its_battery_above_the_reserve(kube: Kube, namespace: str, dry_run: bool) -> None:
    """Prometheus unreachable: the policy holds, but a battery it discharges at 20% state of charge
    with a 25% reserve is idled (or, in dry-run, reported)."""
    name, ess = f"pp-{namespace}", f"ess-{namespace}"
    _battery(kube, ess, name, soc=0.2, setpoint=3_000)
    try:
        spec = _blind_policy(ess, dry_run)
        result = PolicyController(kube.api).run_once(name, spec, {}, now=time.time())
        assert result.status["phase"] == "Degraded"
        degraded = next(c for c in result.status["conditions"] if c["type"] == "Degraded")
        assert degraded["status"] == "True" and "unreachable" in degraded["message"]
        [record] = result.status["recentActions"]
        assert (record["verb"], record["expectedWatts"], record["dryRun"]) == ("idle", -3000.0, dry_run)
        obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, "energystorages", ess)
        if dry_run:
            assert obj["spec"]["setpointWatts"] == 3_000, "dry-run writes nothing"
        else:
            assert obj["spec"]["setpointWatts"] == 0
            assert "gridshift.io/managed-by" not in obj["metadata"].get("annotations", {})
        assert any(e.reason in ("BatteryIdle", "DryRun") for e in result.events)
    finally:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "energystorages", ess)


def test_a_battery_above_its_reserve_is_left_alone_while_blind(kube: Kube, namespace: str) -> None:
    name, ess = f"pp-{namespace}", f"ess-{namespace}"
    _battery(kube, ess, name, soc=0.9, setpoint=3_000)
    try:
        spec = _blind_policy(ess, False)
        result = PolicyController(kube.api).run_once(name, spec, {}, now=time.time())
        assert result.status["phase"] == "Degraded" and not result.status.get("recentActions")
        obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, "energystorages", ess)
        assert obj["spec"]["setpointWatts"] == 3_000, "holding means holding"
    finally:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "energystorages", ess)


def test_a_prometheus_url_outside_the_allow_list_is_refused_with_a_condition(kube: Kube, namespace: str) -> None:
    """The operator admits only its allow-list: a policy naming another address (a cloud metadata
    endpoint here, listening for real) goes Degraded saying so, and nothing is requested from it."""
    import http.server
    import threading

    asked: list[str] = []

    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = PowerPolicySpec.model_validate({
            "budget": {"capWatts": 10_000},
            "telemetry": {"prometheusUrl": f"http://127.0.0.1:{server.server_address[1]}/latest/meta-data"}})
        ctl = PolicyController(kube.api, "http://prometheus.monitoring:9090",
                               allowed_prometheus_urls=("https://thanos.example.com/prometheus",))
        result = ctl.run_once(f"pp-{namespace}", spec, {}, now=time.time())
        degraded = next(c for c in result.status["conditions"] if c["type"] == "Degraded")
        assert (result.status["phase"], degraded["reason"]) == ("Degraded", "PrometheusNotAllowed"), degraded
        assert "allow-prometheus-url" in degraded["message"]
        assert asked == [], "nothing may be requested from a URL outside the allow-list"
    finally:
        server.shutdown()


def test_a_battery_whose_device_is_gone_loses_our_setpoint(kube: Kube, namespace: str) -> None:
    """The Modbus device stopped answering (Ready False): a discharge this policy left on the
    EnergyStorage would be applied whenever the device came back, hours stale. It is cleared (and
    the policy lets go of the battery); another owner's setpoint is left alone."""
    name, ours, theirs = f"pp-{namespace}", f"ess-{namespace}", f"ess2-{namespace}"
    down = {"type": "Ready", "status": "False", "reason": "DeviceUnreachable", "message": "connection refused",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
    _battery(kube, ours, name, soc=0.6, setpoint=3_000)
    _battery(kube, theirs, "someone-else", soc=0.6, setpoint=2_000)
    try:
        for ess in (ours, theirs):
            kube.custom.patch_cluster_custom_object_status(GROUP, VERSION, "energystorages", ess,
                                                           {"status": {"conditions": [down]}})
        for ess, expected in ((ours, 0), (theirs, 2_000)):
            result = PolicyController(kube.api).run_once(name, _blind_policy(ess, dry_run=False), {}, now=time.time())
            obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, "energystorages", ess)
            assert obj["spec"]["setpointWatts"] == expected, (ess, obj["spec"])
            if ess == ours:
                assert "gridshift.io/managed-by" not in (obj["metadata"].get("annotations") or {})
                [record] = result.status["recentActions"]
                assert (record["verb"], record["expectedWatts"]) == ("idle", -3000.0), record
                assert any("device is not ready" in e.message for e in result.events), result.events
    finally:
        for ess in (ours, theirs):
            kube.custom.delete_cluster_custom_object(GROUP, VERSION, "energystorages", ess)
