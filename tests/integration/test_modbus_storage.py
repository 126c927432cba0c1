"""An EnergyStorage with ``driver: modbus``, driven by the operator process over real Modbus TCP:
the setpoint reaches the device and its state comes back into status; killing the operator leaves
a battery that idles by itself after the revert time; an unreachable device and a setpoint the
reserve forbids are reported, not hidden."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gridshift.devcluster.battery_sim import SunSpecBatterySimulator
from gridshift.devcluster.controlplane import free_port
from gridshift.devcluster.lab import OperatorProcess, force_delete
from gridshift.ess.physics import BatteryPhysics
from tests.conftest import Kube, eventually

pytestmark = pytest.mark.cluster
GROUP, VERSION, PLURAL = "gridshift.io", "v1alpha1", "energystorages"


def _ess(name: str, port: int, setpoint: float, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "EnergyStorage", "metadata": {"name": name},
            "spec": {"driver": "modbus", "capacityWattHours": 20_000, "maxDischargeWatts": 10_000,
                     "maxChargeWatts": 5_000, "setpointWatts": setpoint,
                     "modbus": {"host": "127.0.0.1", "port": port, "revertSeconds": 6, "pollSeconds": 1}, **spec}}


@pytest.fixture
def operator(kube: Kube, tmp_path: Path) -> Iterator[OperatorProcess]:
    # No policy here needs Prometheus; the operator only drives batteries.
    proc = OperatorProcess(kube.kubeconfig, f"http://127.0.0.1:{free_port()}", tmp_path / "operator.log").start()
    yield proc
    proc.stop()


def _wait(kube: Kube, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        return obj if check(obj.get("status") or {}) else None

    return eventually(reached, timeout, 0.5, what=f"EnergyStorage {name}")  # type: ignore[return-value]


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def test_the_operator_drives_the_device_and_a_killed_operator_leaves_it_idle(kube: Kube, namespace: str,
                                                                            operator: OperatorProcess) -> None:
    name = f"ess-{namespace}"
    with SunSpecBatterySimulator(BatteryPhysics(20_000, 5_000, 10_000, soc_fraction=0.7)) as sim:
        kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, _ess(name, sim.port, 8_000))
        try:
            obj = _wait(kube, name, lambda s: (s.get("powerWatts") or 0) > 7_999)
            status = obj["status"]
            assert _ready(status)["status"] == "True" and "sim-bess" in status["device"]
            assert status["chargeState"] == "discharging"
            assert status["lastCommand"]["commandedWatts"] == pytest.approx(8_000)
            assert sim.physics.power_w == pytest.approx(8_000), "the device itself discharges"
            first = status["socFraction"]
            _wait(kube, name, lambda s: s.get("socFraction", 1) < first - 0.001)

            kube.custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {"spec": {"setpointWatts": -4_000}})
            _wait(kube, name, lambda s: (s.get("powerWatts") or 0) < -3_999 and s.get("chargeState") == "charging")

            operator.kill()  # no clean-up: only the revert timeout can stop the battery now
            killed = time.monotonic()
            while sim.physics.power_w != 0 and time.monotonic() - killed < 20:
                time.sleep(0.2)
            assert sim.physics.power_w == 0 and sim.reverts, "the device reverted to idle by itself"
            assert time.monotonic() - killed <= 6 + 2.5, "within the revert time (plus a poll)"
        finally:
            force_delete(kube.custom, PLURAL, name)


def test_an_unreachable_device_and_a_reserve_limited_setpoint_are_reported(kube: Kube, namespace: str,
                                                                          operator: OperatorProcess) -> None:
    gone, low = f"gone-{namespace}", f"low-{namespace}"
    port = free_port()
    kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, _ess(gone, port, 1_000))
    with SunSpecBatterySimulator(BatteryPhysics(20_000, 5_000, 10_000, soc_fraction=0.15)) as sim:
        kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL,
                                                 _ess(low, sim.port, 5_000, reserveFraction=0.2))
        try:
            ready = _ready(_wait(kube, gone, lambda s: _ready(s).get("status") == "False")["status"])
            assert ready["reason"] == "DeviceUnreachable" and f"127.0.0.1:{port}" in ready["message"]
            status = _wait(kube, low, lambda s: s.get("lastCommand") is not None)["status"]
            assert status["lastCommand"]["commandedWatts"] == 0
            assert "reserve 20%" in status["lastCommand"]["limitedBy"]
            assert sim.physics.power_w == 0 and not sim.commands, "nothing below the reserve was ever commanded"
            events = kube.core.list_event_for_all_namespaces(field_selector=f"involvedObject.name={low}").items
            assert any(e.reason == "SetpointLimited" for e in events)
        finally:
            force_delete(kube.custom, PLURAL, gone)
            force_delete(kube.custom, PLURAL, low)


def test_a_tls_battery_is_reached_with_the_client_certificate_from_its_secret(kube: Kube, namespace: str,
                                                                              operator: OperatorProcess) -> None:
    """Modbus/TCP Security: the operator reads ca.crt, tls.crt and tls.key from the named Secret; a
    Secret without the key is reported as InvalidCredentials, naming what is missing."""
    import base64

    from gridshift.devcluster.battery_sim import server_tls_context
    from gridshift.devcluster.pki import issue, new_ca

    ca, ca_key = new_ca()
    server_cert, server_key = issue(ca, ca_key, "bess", server=True, ips=("127.0.0.1",))
    client_cert, client_key = issue(ca, ca_key, "gridshift-operator", server=False)

    def secret(name: str, data: dict[str, bytes]) -> None:
        kube.core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": {
            k: base64.b64encode(v).decode() for k, v in data.items()}})

    secret("bess-tls", {"ca.crt": ca, "tls.crt": client_cert, "tls.key": client_key})
    secret("bess-half", {"ca.crt": ca, "tls.crt": client_cert})
    good, half = f"tls-{namespace}", f"half-{namespace}"
    with SunSpecBatterySimulator(BatteryPhysics(20_000, 5_000, 10_000, soc_fraction=0.7),
                                 tls=server_tls_context(ca, server_cert, server_key)) as sim:
        for name, ref in ((good, "bess-tls"), (half, "bess-half")):
            doc = _ess(name, sim.port, 3_000)
            doc["spec"]["modbus"]["tlsSecretRef"] = {"namespace": namespace, "name": ref}
            kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, doc)
        try:
            status = _wait(kube, good, lambda s: (s.get("powerWatts") or 0) > 2_999)["status"]
            assert "(TLS)" in _ready(status)["message"]
            ready = _ready(_wait(kube, half, lambda s: _ready(s).get("status") == "False")["status"])
            assert ready["reason"] == "InvalidCredentials" and "has no tls.key" in ready["message"]
        finally:
            force_delete(kube.custom, PLURAL, good)
            force_delete(kube.custom, PLURAL, half)
