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
