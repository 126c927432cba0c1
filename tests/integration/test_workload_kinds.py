"""Workload kinds beyond Deployment, StatefulSet and Job, against the real API server: the inventory
finds a JobSet through the child Job the real Job controller runs pods for, each suspendable kind is
checkpointed, suspended and resumed through its own field, a LeaderWorkerSet is scaled through its
``/scale`` subresource, and a Kueue-managed Job is stopped through its Workload (Kueue's own CRD).

JobSet and LeaderWorkerSet are not served by the module proxy here, and their controllers, Kubeflow's
and KubeRay's are not run: their CRDs below carry each kind's group, version, plural and (for
LeaderWorkerSet) its scale subresource, which is the contract gridshift's writes depend on."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import yaml
from kubernetes import client

from gridshift.actuators.kubernetes import KubernetesActuator
from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.devcluster.binaries import module_source
from gridshift.devcluster.lab import training
from gridshift.operator.inventory import InventoryReader
from gridshift.planner import Action
from gridshift.workloads import kueue
from gridshift.workloads.registry import BY_KIND
from tests.conftest import Kube, establish_crd, eventually

pytestmark = pytest.mark.cluster
SITE = "site-b"
KUEUE_MODULE, KUEUE_RELEASE = "sigs.k8s.io/kueue", "v0.17.0"


def _stand_in_crd(kind: str) -> dict[str, Any]:
    k = BY_KIND[kind]
    version: dict[str, Any] = {"name": k.version, "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}
    if k.shed == "scale":
        version["subresources"] = {"scale": {"specReplicasPath": ".spec.replicas",
                                             "statusReplicasPath": ".status.replicas"}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{k.plural}.{k.group}"},
            "spec": {"group": k.group, "scope": "Namespaced", "versions": [version],
                     "names": {"kind": kind, "plural": k.plural, "singular": kind.lower(), "listKind": f"{kind}List"}}}


@pytest.fixture(scope="module")
def kinds(kube: Kube) -> None:
    for kind in ("JobSet", "PyTorchJob", "TrainJob", "RayJob", "LeaderWorkerSet"):
        establish_crd(kube, _stand_in_crd(kind))


def _spec(namespace: str) -> PowerPolicySpec:
    return PowerPolicySpec.model_validate({
        "scope": {"nodeSelector": {"matchLabels": {"gridshift.io/site": SITE}}},
        "budget": {"capWatts": 10_000},
        "workloads": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                      "wattsPerGpu": 500}})


def _create(kube: Kube, namespace: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    k = BY_KIND[kind]
    created: dict[str, Any] = client.CustomObjectsApi(kube.api).create_namespaced_custom_object(
        k.group, k.version, namespace, k.plural,
        {"apiVersion": k.api_version, "kind": kind, "metadata": {"name": name}, "spec": spec})
    return created


def _get(kube: Kube, namespace: str, kind: str, name: str) -> dict[str, Any]:
    k = BY_KIND[kind]
    got: dict[str, Any] = client.CustomObjectsApi(kube.api).get_namespaced_custom_object(
        k.group, k.version, namespace, k.plural, name)
    return got


def test_the_inventory_finds_a_jobset_through_the_pods_of_its_child_job(
        kube: Kube, namespace: str, kinds: None) -> None:
    child = training("llm-workers-0", SITE, 2, 4, 600)
    js = _create(kube, namespace, "JobSet", "llm", {"replicatedJobs": [
        {"name": "workers", "replicas": 1, "template": {"spec": child["spec"]}}]})
    child["metadata"]["ownerReferences"] = [{"apiVersion": BY_KIND["JobSet"].api_version, "kind": "JobSet",
                                             "name": "llm", "uid": js["metadata"]["uid"], "controller": True}]
    kube.batch.create_namespaced_job(namespace, child)  # what the JobSet controller would create
    eventually(lambda: len([p for p in kube.core.list_namespaced_pod(namespace).items
                            if p.status.phase == "Running"]) == 2, 60, what="the child Job's 2 pods running")
    reader = InventoryReader(kube.api)
    spec = _spec(namespace)
    inv = reader.read("p", spec, reader.nodes(spec.scope.node_selector))
    assert [w.key for w in inv.workloads] == [f"JobSet/{namespace}/llm"], "the child Job is the JobSet's"
    [w] = inv.workloads
    assert (w.suspendable, w.replicas, w.watts_per_replica) == (True, 2, 4 * 500)
    assert len(inv.pods[w.key]) == 2


@pytest.mark.parametrize(("kind", "spec", "suspend_at"), [
    ("JobSet", {"replicatedJobs": []}, ("spec", "suspend")),
    ("PyTorchJob", {"pytorchReplicaSpecs": {}, "runPolicy": {"cleanPodPolicy": "None"}},
     ("spec", "runPolicy", "suspend")),
    ("TrainJob", {"trainer": {"numNodes": 2}}, ("spec", "suspend")),
    ("RayJob", {"entrypoint": "python train.py", "rayClusterSpec": {}}, ("spec", "suspend")),
])
def test_each_suspendable_kind_is_checkpointed_suspended_and_resumed_through_its_own_field(
        kube: Kube, namespace: str, kinds: None, kind: str, spec: dict[str, Any], suspend_at: tuple[str, ...]) -> None:
    _create(kube, namespace, kind, "train", spec)
    act = KubernetesActuator(kube.api, "policy-a", dry_run=False)
    key = f"{kind}/{namespace}/train"

    def field() -> Any:
        value: Any = _get(kube, namespace, kind, "train")
        for part in suspend_at:
            value = (value or {}).get(part)
        return value

    assert act.apply(Action("suspend", "checkpoint", key, 2400, "test", checkpoint=True), time.time()).applied
    notes = _get(kube, namespace, kind, "train")["metadata"]["annotations"]
    assert notes[ann.MANAGED_BY] == "policy-a" and ann.CHECKPOINT_REQUESTED in notes and not field()
    assert not KubernetesActuator(kube.api, "policy-b", dry_run=False).apply(
        Action("suspend", "suspend", key, 2400, "test"), time.time()).applied, "another policy's hold is refused"
    assert act.apply(Action("suspend", "suspend", key, 2400, "test"), time.time()).applied
    assert field() is True
    expected = copy.deepcopy(spec)
    into = expected
    for part in suspend_at[1:-1]:
        into = into.setdefault(part, {})
    into[suspend_at[-1]] = True
    assert _get(kube, namespace, kind, "train")["spec"] == expected, "only the suspend field changes"
    resumed = act.apply(Action("suspend", "resume", key, -2400, "test"), time.time())
    assert resumed.applied and resumed.message.startswith("resumed")
    obj = _get(kube, namespace, kind, "train")
    assert field() is False
    assert not set(obj["metadata"].get("annotations") or {}) & {*ann.GRIDSHIFT_WRITES, ann.CHECKPOINT_REQUESTED}


def test_a_leaderworkerset_is_scaled_a_group_at_a_time_through_its_scale_subresource(
        kube: Kube, namespace: str, kinds: None) -> None:
    _create(kube, namespace, "LeaderWorkerSet", "serve", {"replicas": 4, "leaderWorkerTemplate": {"size": 2}})
    act = KubernetesActuator(kube.api, "policy-a", dry_run=False)
    key = f"LeaderWorkerSet/{namespace}/serve"
    shed = act.apply(Action("scaleDown", "scaleDown", key, 600, "test", replicas=1), time.time())
    assert shed.applied and shed.message.startswith(f"scaled {key} 4 -> 1"), shed.message
    obj = _get(kube, namespace, "LeaderWorkerSet", "serve")
    assert obj["spec"]["replicas"] == 1 and obj["metadata"]["annotations"][ann.ORIGINAL_REPLICAS] == "4"
    assert act.apply(Action("scaleDown", "scaleUp", key, -600, "test", replicas=4), time.time()).applied
    obj = _get(kube, namespace, "LeaderWorkerSet", "serve")
    assert obj["spec"]["replicas"] == 4
    assert not set(obj["metadata"].get("annotations") or {}) & set(ann.GRIDSHIFT_WRITES)
    assert obj["spec"]["leaderWorkerTemplate"] == {"size": 2}, "only the replicas change"


def _kueue_workload_crd() -> dict[str, Any]:
    bases = module_source(KUEUE_MODULE, KUEUE_RELEASE) / "config" / "components" / "crd" / "bases"
    crd: dict[str, Any] = yaml.safe_load((bases / "kueue.x-k8s.io_workloads.yaml").read_text())
    return crd


def test_a_kueue_managed_job_is_stopped_by_deactivating_its_workload_never_by_its_suspend(
        kube: Kube, namespace: str) -> None:
    crd = _kueue_workload_crd()
    establish_crd(kube, crd)
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
    job = training("train", SITE, 1, 4, 600)
    job["metadata"]["labels"][kueue.QUEUE_LABEL] = "team-a"
    created = kube.batch.create_namespaced_job(namespace, job)  # admitted: Kueue unsuspended it
    custom = client.CustomObjectsApi(kube.api)
    pod_template = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    custom.create_namespaced_custom_object(kueue.GROUP, version, namespace, kueue.PLURAL, {
        "apiVersion": f"{kueue.GROUP}/{version}", "kind": "Workload",
        "metadata": {"name": "job-train-1a2b3", "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": created.metadata.uid,
            "controller": True}]},
        "spec": {"queueName": "team-a", "podSets": [{"name": "main", "count": 1, "template": pod_template}]}})

    def workload() -> dict[str, Any]:
        got: dict[str, Any] = custom.get_namespaced_custom_object(kueue.GROUP, version, namespace, kueue.PLURAL,
                                                                  "job-train-1a2b3")
        return got

    act = KubernetesActuator(kube.api, "policy-a", dry_run=False)
    key = f"Job/{namespace}/train"
    stopped = act.apply(Action("suspend", "suspend", key, 2400, "test"), time.time())
    assert stopped.applied and "deactivated its Kueue Workload job-train-1a2b3" in stopped.message
    assert workload()["spec"]["active"] is False
    got = kube.batch.read_namespaced_job("train", namespace)
    assert not got.spec.suspend, "Kueue suspends the job it evicts; gridshift never toggles it under Kueue"
    assert got.metadata.annotations[ann.MANAGED_BY] == "policy-a", "the hold is recorded on the job"
    resumed = act.apply(Action("suspend", "resume", key, -2400, "test"), time.time())
    assert resumed.applied and "reactivated" in resumed.message
    assert workload()["spec"]["active"] is True
    assert ann.MANAGED_BY not in (workload()["metadata"].get("annotations") or {})

    # A Workload an admin deactivated stays deactivated through a hold and its release.
    custom.patch_namespaced_custom_object(kueue.GROUP, version, namespace, kueue.PLURAL, "job-train-1a2b3",
                                          {"spec": {"active": False}})
    assert "already inactive" in act.apply(Action("suspend", "suspend", key, 2400, "test"), time.time()).message
    assert act.apply(Action("suspend", "resume", key, -2400, "test"), time.time()).applied
    assert workload()["spec"]["active"] is False
