"""The audit trail survives a crash mid-period: every action is recorded in status before it is
applied (outcome Intended), so an operator killed between applying it and writing the period's
status loses no record, and the next operator marks it Interrupted and posts a Warning Event."""

from __future__ import annotations

import time

import pytest

from gridshift.actuators.kubernetes import KubernetesActuator
from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.devcluster.lab import Site, force_delete, inference, policy, prom_query
from gridshift.operator import control
from tests.conftest import eventually
from tests.integration.conftest import Lab

pytestmark = pytest.mark.cluster
GROUP, VERSION, PLURAL = "gridshift.io", "v1alpha1", "powerpolicies"


class Killed(BaseException):
    """The process dying right after an action reached the API server."""


def test_an_action_applied_before_a_crash_is_in_status_and_events(lab: Lab, site: Site, namespace: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    kube = lab.kube
    kube.apps.create_namespaced_deployment(namespace, inference("chat", site.name, 4, 500, priority=1))
    eventually(lambda: (lambda r: r and float(r[0]["value"][1]) > 3_400)(
        prom_query(lab.prometheus_url, site.power_query)), 90, what="the deployment's power in Prometheus")
    name = f"pp-{namespace}"
    doc = policy(name, site.name, namespace, lab.prometheus_url, cap=3_000, trigger=2_800, dry_run=False,
                 ladder=["scaleDown"])
    kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, doc)
    spec = PowerPolicySpec.model_validate(doc["spec"])
    applied = KubernetesActuator.apply

    def apply_then_die(self, action, now):  # type: ignore[no-untyped-def]
        applied(self, action, now)
        raise Killed

    try:
        monkeypatch.setattr(KubernetesActuator, "apply", apply_then_die)
        doomed = control.PolicyController(kube.api)
        deadline, killed, last = time.monotonic() + 60, False, None
        while not killed and time.monotonic() < deadline:  # the first period that acts dies in its first action
            try:
                last = doomed.run_once(name, spec, {}, now=time.time())
            except Killed:
                killed = True
            else:
                time.sleep(1)
        monkeypatch.undo()
        assert killed, f"no period acted on the surge: {last.status if last else None}"
        assert kube.apps.read_namespaced_deployment("chat", namespace).spec.replicas < 4, "the action was applied"
        status = kube.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name).get("status") or {}
        [record] = status["recentActions"]
        assert (record["verb"], record["target"], record["outcome"]) == (
            "scaleDown", f"Deployment/{namespace}/chat", "Intended"), record

        # The next operator process finds it half done: Interrupted in status, and a Warning Event.
        result = control.PolicyController(kube.api).run_once(name, spec, status, now=time.time())
        first = result.status["recentActions"][0]
        assert (first["time"], first["outcome"]) == (record["time"], "Interrupted"), result.status["recentActions"]
        warned = [e for e in result.events if e.reason == "ActionInterrupted"]
        assert len(warned) == 1 and f"Deployment/{namespace}/chat" in warned[0].message, result.events
    finally:
        force_delete(kube.custom, PLURAL, name)
