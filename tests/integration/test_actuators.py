"""Inventory and actuators against the real API server: what the planner is told about workloads
(priority, floor, protection, watts) and what writing an action leaves on the objects."""

from __future__ import annotations

import time

import pytest
import yaml
from kubernetes import client

from gridshift.actuators.kubernetes import KubernetesActuator
from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.devcluster.binaries import module_source
from gridshift.devcluster.lab import inference, training
from gridshift.operator.inventory import InventoryReader
from gridshift.planner import Action
from tests.conftest import Kube, establish_crd, eventually

pytestmark = pytest.mark.cluster
SITE = "site-b"


def _spec(namespace: str, **extra) -> PowerPolicySpec:
    return PowerPolicySpec.model_validate({
        "scope": {"nodeSelector": {"matchLabels": {"gridshift.io/site": SITE}}},
        "budget": {"capWatts": 10_000},
        "workloads": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                      "wattsPerGpu": 500},
        **extra,
    })


def test_inventory_reads_priority_floor_protection_and_watts(kube: Kube, namespace: str) -> None:
    sched = client.SchedulingV1Api(kube.api)
    pc = f"batch-{namespace}"
    sched.create_priority_class({"metadata": {"name": pc}, "value": 1000})
    try:
        web = inference("web", SITE, 3, 300)
        web["metadata"]["annotations"] = {}
        web["spec"]["template"]["spec"]["priorityClassName"] = pc
        kube.apps.create_namespaced_deployment(namespace, web)
        client.AutoscalingV2Api(kube.api).create_namespaced_horizontal_pod_autoscaler(namespace, {
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                   "target": {"type": "Utilization",
                                                                              "averageUtilization": 80}}}]}})
        kube.batch.create_namespaced_job(namespace, training("train", SITE, 1, 4, 600, protected=True, priority=7))
        eventually(lambda: len([p for p in kube.core.list_namespaced_pod(namespace).items
                                if p.status.phase == "Running"]) == 4, 60, what="4 pods running")

        reader = InventoryReader(kube.api)
        spec = _spec(namespace)
        nodes = reader.nodes(spec.scope.node_selector)
        assert nodes and all(n.startswith(f"gpu-{SITE}") for n in nodes)
        inv = reader.read("p", spec, nodes, pod_watts={})
        by = {w.key: w for w in inv.workloads}
        web_w = by[f"Deployment/{namespace}/web"]
        assert (web_w.priority, web_w.floor, web_w.replicas, web_w.protected) == (1000, 2, 3, False)
        assert web_w.watts_per_replica == 500  # 1 GPU x the policy's wattsPerGpu: nothing measured yet
        train_w = by[f"Job/{namespace}/train"]
        assert (train_w.priority, train_w.protected, train_w.watts_per_replica) == (7, True, 2000)

        # Measured pod power wins over estimates.
        pods = [p.metadata.name for p in kube.core.list_namespaced_pod(namespace, label_selector="app=web").items]
        measured = reader.read("p", spec, nodes, pod_watts={(namespace, p): 310.0 for p in pods})
        assert {w.key: w for w in measured.workloads}[f"Deployment/{namespace}/web"].watts_per_replica == 310.0
        # Another site's policy does not see these workloads.
        other = _spec(namespace, scope={"nodeSelector": {"matchLabels": {"gridshift.io/site": "site-a"}}})
        assert reader.read("p", other, reader.nodes(other.scope.node_selector)).workloads == []
    finally:
        sched.delete_priority_class(pc)


def test_scale_records_the_original_and_restore_releases_it(kube: Kube, namespace: str) -> None:
    kube.apps.create_namespaced_deployment(namespace, inference("chat", SITE, 4, 300))
    mine = KubernetesActuator(kube.api, "policy-a", dry_run=False)
    key = f"Deployment/{namespace}/chat"
    now = time.time()
    assert mine.apply(Action("scaleDown", "scaleDown", key, 600, "test", replicas=2), now).applied
    assert mine.apply(Action("scaleDown", "scaleDown", key, 300, "test", replicas=1), now).applied
    dep = kube.apps.read_namespaced_deployment("chat", namespace)
    notes = dep.metadata.annotations
    assert dep.spec.replicas == 1
    assert notes["gridshift.io/original-replicas"] == "4", "a second scale-down must keep the first original"
    assert notes["gridshift.io/managed-by"] == "policy-a"

    theirs = KubernetesActuator(kube.api, "policy-b", dry_run=False)
    refused = theirs.apply(Action("scaleDown", "scaleDown", key, 300, "test", replicas=0), now)
    assert not refused.applied and "managed by PowerPolicy policy-a" in refused.message
    assert kube.apps.read_namespaced_deployment("chat", namespace).spec.replicas == 1

    assert mine.apply(Action("scaleDown", "scaleUp", key, -300, "test", replicas=2), now).applied
    assert kube.apps.read_namespaced_deployment("chat", namespace).metadata.annotations[
        "gridshift.io/original-replicas"] == "4"
    assert mine.apply(Action("scaleDown", "scaleUp", key, -600, "test", replicas=4), now).applied
    dep = kube.apps.read_namespaced_deployment("chat", namespace)
    assert dep.spec.replicas == 4
    assert not set(dep.metadata.annotations or {}) & set(ann.GRIDSHIFT_WRITES), "restore must release the object"

    dry = KubernetesActuator(kube.api, "policy-a", dry_run=True)
    out = dry.apply(Action("scaleDown", "scaleDown", key, 600, "test", replicas=2), now)
    assert not out.applied and out.message.startswith("dry-run")
    assert kube.apps.read_namespaced_deployment("chat", namespace).spec.replicas == 4


def test_a_scale_down_under_an_hpa_holds_through_the_hpa_controller_and_restores_its_spec(
        kube: Kube, namespace: str) -> None:
    """The kube-controller-manager's real HPA controller: once gridshift has shed a Deployment, the
    HPA keeps it down even when something scales it back up (as the HPA itself would on its metric),
    and the restore leaves the HPA's spec exactly as it was."""
    hpas = client.AutoscalingV2Api(kube.api)
    kube.apps.create_namespaced_deployment(namespace, inference("chat", SITE, 6, 300))
    hpas.create_namespaced_horizontal_pod_autoscaler(namespace, {
        "metadata": {"name": "chat"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat"},
                 "minReplicas": 2, "maxReplicas": 8,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 80}}}]}})
    before = hpas.read_namespaced_horizontal_pod_autoscaler("chat", namespace).spec.to_dict()
    mine = KubernetesActuator(kube.api, "policy-a", dry_run=False)
    key = f"Deployment/{namespace}/chat"
    shed = mine.apply(Action("scaleDown", "scaleDown", key, 1200, "test", replicas=2), time.time())
    assert shed.applied and "HorizontalPodAutoscaler chat maxReplicas 8 -> 2" in shed.message
    held = hpas.read_namespaced_horizontal_pod_autoscaler("chat", namespace)
    assert held.spec.max_replicas == 2 and held.metadata.annotations[ann.ORIGINAL_MAX_REPLICAS] == "8"

    # Something scales the Deployment back up during the peak: the HPA controller takes it down again.
    kube.apps.patch_namespaced_deployment_scale("chat", namespace, {"spec": {"replicas": 6}})
    eventually(lambda: kube.apps.read_namespaced_deployment("chat", namespace).spec.replicas == 2, 90,
               what="the HPA controller to hold the Deployment at the lowered maximum")

    theirs = KubernetesActuator(kube.api, "policy-b", dry_run=False)
    refused = theirs.apply(Action("scaleDown", "scaleUp", key, -1200, "test", replicas=6), time.time())
    assert not refused.applied and "managed by PowerPolicy policy-a" in refused.message

    assert mine.apply(Action("scaleDown", "scaleUp", key, -600, "test", replicas=4), time.time()).applied
    assert hpas.read_namespaced_horizontal_pod_autoscaler("chat", namespace).spec.max_replicas == 4
    assert mine.apply(Action("scaleDown", "scaleUp", key, -600, "test", replicas=6), time.time()).applied
    after = hpas.read_namespaced_horizontal_pod_autoscaler("chat", namespace)
    assert after.spec.to_dict() == before, "the HPA's own spec comes back exactly"
    assert not set(after.metadata.annotations or {}) & set(ann.AUTOSCALER_WRITES)
    dep = kube.apps.read_namespaced_deployment("chat", namespace)
    assert dep.spec.replicas == 6 and not set(dep.metadata.annotations or {}) & set(ann.GRIDSHIFT_WRITES)


KEDA_MODULE, KEDA_RELEASE = "github.com/kedacore/keda/v2", "v2.18.0"


def _install_keda_scaled_object_crd(kube: Kube) -> None:
    """KEDA's own ScaledObject CRD, from its Go module (KEDA's operator is not run here: the test checks
    the object contract KEDA acts on)."""
    crd = yaml.safe_load((module_source(KEDA_MODULE, KEDA_RELEASE) / "config" / "crd" / "bases"
                          / "keda.sh_scaledobjects.yaml").read_text())
    establish_crd(kube, crd)


def test_a_keda_target_is_paused_through_its_scaled_object_and_never_scaled_directly(
        kube: Kube, namespace: str) -> None:
    _install_keda_scaled_object_crd(kube)
    kube.apps.create_namespaced_deployment(namespace, inference("chat", SITE, 4, 300))
    custom = client.CustomObjectsApi(kube.api)
    custom.create_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects", {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "chat", "annotations": {"team": "inference"}},
        "spec": {"scaleTargetRef": {"name": "chat"}, "minReplicaCount": 1, "maxReplicaCount": 8,
                 "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "80"}}]}})

    def scaled_object() -> dict:
        return custom.get_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects", "chat")

    before = scaled_object()["metadata"]["annotations"]
    mine = KubernetesActuator(kube.api, "policy-a", dry_run=False)
    key = f"Deployment/{namespace}/chat"
    shed = mine.apply(Action("scaleDown", "scaleDown", key, 600, "test", replicas=2), time.time())
    assert shed.applied and "paused its KEDA ScaledObject chat at 2 replicas" in shed.message
    assert scaled_object()["metadata"]["annotations"][ann.KEDA_PAUSED_REPLICAS] == "2"
    dep = kube.apps.read_namespaced_deployment("chat", namespace)
    assert dep.spec.replicas == 4, "KEDA scales its target; gridshift never writes it"
    assert dep.metadata.annotations[ann.ORIGINAL_REPLICAS] == "4"

    theirs = KubernetesActuator(kube.api, "policy-b", dry_run=False)
    assert not theirs.apply(Action("scaleDown", "scaleDown", key, 300, "test", replicas=1), time.time()).applied

    assert mine.apply(Action("scaleDown", "scaleUp", key, -600, "test", replicas=4), time.time()).applied
    assert scaled_object()["metadata"]["annotations"] == before, "KEDA autoscales it again, the owner's notes kept"
    assert not set(kube.apps.read_namespaced_deployment("chat", namespace).metadata.annotations or {}) \
        & set(ann.GRIDSHIFT_WRITES)

    # An owner's own pause survives a scale-down and its restore.
    custom.patch_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects", "chat", {
        "metadata": {"annotations": {ann.KEDA_PAUSED_REPLICAS: "3"}}})
    assert mine.apply(Action("scaleDown", "scaleDown", key, 300, "test", replicas=1), time.time()).applied
    assert scaled_object()["metadata"]["annotations"][ann.KEDA_PAUSED_REPLICAS] == "1"
    assert mine.apply(Action("scaleDown", "scaleUp", key, -300, "test", replicas=4), time.time()).applied
    assert scaled_object()["metadata"]["annotations"] == {**before, ann.KEDA_PAUSED_REPLICAS: "3"}


def test_job_handshake_and_battery_setpoint(kube: Kube, namespace: str) -> None:
    kube.batch.create_namespaced_job(namespace, training("train", SITE, 1, 4, 600))
    act = KubernetesActuator(kube.api, "policy-a", dry_run=False)
    key = f"Job/{namespace}/train"
    assert act.apply(Action("suspend", "checkpoint", key, 2400, "test", checkpoint=True), time.time()).applied
    job = kube.batch.read_namespaced_job("train", namespace)
    assert job.metadata.annotations.get("gridshift.io/checkpoint-requested") and not job.spec.suspend
    assert act.apply(Action("suspend", "suspend", key, 2400, "test"), time.time()).applied
    assert kube.batch.read_namespaced_job("train", namespace).spec.suspend
    assert act.apply(Action("suspend", "resume", key, -2400, "test"), time.time()).applied
    job = kube.batch.read_namespaced_job("train", namespace)
    assert not job.spec.suspend and "gridshift.io/managed-by" not in (job.metadata.annotations or {})

    name = f"ess-{namespace}"
    kube.custom.create_cluster_custom_object("gridshift.io", "v1alpha1", "energystorages", {
        "apiVersion": "gridshift.io/v1alpha1", "kind": "EnergyStorage", "metadata": {"name": name},
        "spec": {"capacityWattHours": 10_000, "maxDischargeWatts": 5_000, "maxChargeWatts": 2_500}})
    try:
        assert act.apply(Action("battery", "discharge", f"EnergyStorage/{name}", 3000, "t", setpoint_w=3000),
                         time.time()).applied
        obj = kube.custom.get_cluster_custom_object("gridshift.io", "v1alpha1", "energystorages", name)
        assert obj["spec"]["setpointWatts"] == 3000
        assert obj["metadata"]["annotations"]["gridshift.io/managed-by"] == "policy-a"
        # The API server itself refuses a setpoint beyond the rating (CEL), naming the field.
        with pytest.raises(client.ApiException) as err:
            kube.custom.patch_cluster_custom_object("gridshift.io", "v1alpha1", "energystorages", name,
                                                    {"spec": {"setpointWatts": 9000}})
        assert err.value.status == 422 and "setpointWatts" in err.value.body
        assert act.apply(Action("battery", "idle", f"EnergyStorage/{name}", -3000, "t", setpoint_w=0),
                         time.time()).applied
        obj = kube.custom.get_cluster_custom_object("gridshift.io", "v1alpha1", "energystorages", name)
        assert obj["spec"]["setpointWatts"] == 0 and "gridshift.io/managed-by" not in obj["metadata"].get(
            "annotations", {})
    finally:
        kube.custom.delete_cluster_custom_object("gridshift.io", "v1alpha1", "energystorages", name)
