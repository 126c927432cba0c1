"""Workload kinds as plug-ins, without a cluster: which top workload a pod belongs to (a JobSet's
child Jobs, a TrainJob's JobSet, a RayJob's cluster, a LeaderWorkerSet's groups), what each kind runs,
how it is suspended, and Kueue's Workload handshake (gridshift.workloads)."""

from __future__ import annotations

from typing import Any

import pytest

from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.operator.inventory import Inventory, translate
from gridshift.workloads import kueue
from gridshift.workloads.registry import BY_KIND, KINDS, kind_of

SPEC = PowerPolicySpec.model_validate({"budget": {"capWatts": 100000}, "workloads": {"wattsPerGpu": 500}})
NODES = {"gpu-1": 8}


def ref(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "name": name, "controller": True, "uid": f"uid-{name}"}


def meta(name: str, owner: tuple[str, str] | None = None, labels: dict[str, str] | None = None,
         **notes: str) -> dict[str, Any]:
    return {"name": name, "namespace": "ml", "uid": f"uid-{name}", "labels": labels or {}, "annotations": notes,
            "ownerReferences": [ref(*owner)] if owner else []}


def pod(name: str, owner: tuple[str, str] | None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": meta(name, owner, labels), "spec": {"nodeName": "gpu-1"}}


def gpu_pod(gpus: int) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}


def of(kind: str, name: str, spec: dict[str, Any], owner: tuple[str, str] | None = None,
       labels: dict[str, str] | None = None, status: dict[str, Any] | None = None,
       **notes: str) -> tuple[Any, dict[str, Any]]:
    return BY_KIND[kind], {"metadata": meta(name, owner, labels, **notes), "spec": spec, "status": status or {}}


def jobset(name: str, owner: tuple[str, str] | None = None, **spec: Any) -> tuple[Any, dict[str, Any]]:
    return of("JobSet", name, {"replicatedJobs": [
        {"name": "workers", "replicas": 2, "template": {"spec": {"parallelism": 2, "template": gpu_pod(4)}}},
        {"name": "driver", "replicas": 1, "template": {"spec": {"template": gpu_pod(0)}}}], **spec}, owner)


def child_job(name: str, parent: tuple[str, str]) -> tuple[Any, dict[str, Any]]:
    return of("Job", name, {"parallelism": 2, "template": gpu_pod(4)}, parent)


def inventory(running: list[dict[str, Any]], objects: list[tuple[Any, dict[str, Any]]],
              pod_watts: dict[tuple[str, str], float] | None = None) -> Inventory:
    return translate("site", SPEC, NODES, {"ml"}, running, objects, {}, {}, pod_watts or {})


def test_every_kind_names_its_api_and_how_it_is_shed() -> None:
    assert [k.kind for k in KINDS] == ["Deployment", "StatefulSet", "Job", "JobSet", "PyTorchJob", "TrainJob",
                                       "RayJob", "LeaderWorkerSet"]
    assert {k.kind for k in KINDS if k.shed == "scale"} == {"Deployment", "StatefulSet", "LeaderWorkerSet"}
    assert BY_KIND["PyTorchJob"].suspend_patch(True) == {"spec": {"runPolicy": {"suspend": True}}}
    assert BY_KIND["JobSet"].suspend_patch(False) == {"spec": {"suspend": False}}
    assert BY_KIND["LeaderWorkerSet"].api_version == "leaderworkerset.x-k8s.io/v1"
    assert kind_of("RayJob/ml/x") is BY_KIND["RayJob"] and kind_of("CronJob/ml/x") is None
    with pytest.raises(ValueError, match="scaling"):
        BY_KIND["Deployment"].suspend_patch(True)


def test_a_jobsets_pods_and_child_jobs_are_the_jobsets_and_it_is_stopped_whole() -> None:
    objects = [jobset("llm"), *(child_job(f"llm-workers-{j}", ("JobSet", "llm")) for j in (0, 1))]
    running = [pod(f"llm-workers-{j}-{i}", ("Job", f"llm-workers-{j}")) for j in (0, 1) for i in (0, 1)]
    inv = inventory(running, objects, pod_watts={("ml", "llm-workers-0-0"): 2000.0, ("ml", "llm-workers-1-1"): 1800.0})
    [w] = inv.workloads  # the child Jobs are never shed under the JobSet's feet
    assert (w.key, w.suspendable, w.replicas, w.watts_per_replica) == ("JobSet/ml/llm", True, 5, 1900.0)
    assert inv.pods["JobSet/ml/llm"] == sorted(p["metadata"]["name"] for p in running)
    # nothing measured: GPUs averaged over its 5 pods (4 with 4 GPUs, a driver with none) x wattsPerGpu
    assert inventory(running, objects).workloads[0].watts_per_replica == pytest.approx(16 / 5 * 500)
    suspended = [jobset("llm", suspend=True), *objects[1:]]
    assert inventory(running, suspended).workloads[0].suspended


def test_a_trainjob_owns_its_jobset_and_is_what_gets_suspended() -> None:
    trainer = {"numNodes": 2, "resourcesPerNode": {"limits": {"nvidia.com/gpu": 8}}}
    objects = [of("TrainJob", "ft", {"trainer": trainer}),
               jobset("ft", owner=("TrainJob", "ft")), child_job("ft-node-0", ("JobSet", "ft"))]
    inv = inventory([pod("ft-node-0-0", ("Job", "ft-node-0"))], objects)
    [w] = inv.workloads
    assert (w.key, w.replicas, w.watts_per_replica) == ("TrainJob/ml/ft", 2, 8 * 500)


def test_a_pytorchjob_counts_master_and_workers_and_a_finished_one_is_left_alone() -> None:
    spec = {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": gpu_pod(8)},
                                    "Worker": {"replicas": 3, "template": gpu_pod(8)}},
            "runPolicy": {"suspend": False}}
    running = [pod("pt-master-0", ("PyTorchJob", "pt")), pod("pt-worker-0", ("PyTorchJob", "pt"))]
    [w] = inventory(running, [of("PyTorchJob", "pt", spec)]).workloads
    assert (w.key, w.replicas, w.watts_per_replica, w.suspended) == ("PyTorchJob/ml/pt", 4, 4000, False)
    done = of("PyTorchJob", "pt", spec, status={"conditions": [{"type": "Succeeded", "status": "True"}]})
    assert inventory(running, [done]).workloads == []


def test_a_rayjobs_cluster_pods_are_the_rayjobs_through_the_cluster_it_names() -> None:
    spec = {"rayClusterSpec": {"headGroupSpec": {"template": gpu_pod(0)},
                               "workerGroupSpecs": [{"replicas": 2, "numOfHosts": 2, "template": gpu_pod(4)}]}}
    cluster = ("RayCluster", "tune-x7k2p")  # KubeRay's RayCluster owns the pods; the inventory does not list it
    running = [pod("tune-x7k2p-head", cluster), pod("tune-x7k2p-worker-0", cluster),
               pod("tune-submit", ("Job", "tune")), pod("other-head", ("RayCluster", "other"))]
    objects = [of("RayJob", "tune", spec, status={"rayClusterName": "tune-x7k2p"}),
               of("Job", "tune", {"template": gpu_pod(0)}, ("RayJob", "tune"))]
    inv = inventory(running, objects)
    [w] = inv.workloads  # the submitter Job is the RayJob's, not a workload of its own
    assert (w.key, w.replicas, w.watts_per_replica) == ("RayJob/ml/tune", 5, pytest.approx(16 / 5 * 500))
    assert len(inv.pods["RayJob/ml/tune"]) == 3, "a RayCluster no RayJob names is nobody's"
    finished = of("RayJob", "tune", spec, status={"rayClusterName": "tune-x7k2p", "jobDeploymentStatus": "Complete"})
    assert inventory(running, [finished, objects[1]]).workloads == []


def test_a_job_a_cronjob_made_is_still_a_workload_of_its_own() -> None:
    [w] = inventory([pod("nightly-1-x", ("Job", "nightly-1"))],
                    [of("Job", "nightly-1", {"template": gpu_pod(2)}, ("CronJob", "nightly"))]).workloads
    assert w.key == "Job/ml/nightly-1"


def test_a_leaderworkerset_scales_by_group_and_its_statefulsets_are_its_own() -> None:
    name = {"leaderworkerset.sigs.k8s.io/name": "serve"}
    lws = of("LeaderWorkerSet", "serve", {"replicas": 3, "leaderWorkerTemplate": {
        "size": 4, "leaderTemplate": gpu_pod(1), "workerTemplate": gpu_pod(2)}})
    leader_sts = of("StatefulSet", "serve", {"replicas": 3, "template": gpu_pod(1)}, ("LeaderWorkerSet", "serve"), name)
    worker_sts = of("StatefulSet", "serve-0", {"replicas": 3, "template": gpu_pod(2)}, ("Pod", "serve-0"), name)
    running = [pod("serve-0", ("StatefulSet", "serve"), name), pod("serve-0-1", ("StatefulSet", "serve-0"), name)]
    inv = inventory(running, [lws, leader_sts, worker_sts], pod_watts={("ml", "serve-0"): 300.0,
                                                                       ("ml", "serve-0-1"): 500.0})
    [w] = inv.workloads
    # a replica is a group: 4 pods at their measured mean
    assert (w.key, w.suspendable, w.replicas, w.watts_per_replica) == ("LeaderWorkerSet/ml/serve", False, 3, 1600.0)
    # nothing measured: a leader with 1 GPU and 3 workers with 2 each
    assert inventory(running, [lws, leader_sts, worker_sts]).workloads[0].watts_per_replica == 7 * 500


def test_the_policy_selector_picks_top_workloads_and_their_children_follow() -> None:
    spec = SPEC.model_copy(update={"workloads": SPEC.workloads.model_copy(
        update={"selector": SPEC.workloads.selector.model_validate({"matchLabels": {"power": "shed"}})})})
    objects = [jobset("llm"), child_job("llm-workers-0", ("JobSet", "llm"))]
    objects[0][1]["metadata"]["labels"] = {"power": "shed"}
    running = [pod("llm-workers-0-0", ("Job", "llm-workers-0"))]
    [w] = translate("site", spec, NODES, {"ml"}, running, objects, {}, {}, {}).workloads
    assert w.key == "JobSet/ml/llm"
    objects[0][1]["metadata"]["labels"] = {}
    assert translate("site", spec, NODES, {"ml"}, running, objects, {}, {}, {}).workloads == []


def workload(active: bool | None = None, **notes: str) -> dict[str, Any]:
    spec = {} if active is None else {"active": active}
    return {"metadata": {"name": "job-train-1a2b", "resourceVersion": "7", "annotations": notes,
                         "ownerReferences": [{"kind": "Job", "name": "train", "uid": "u-train"}]}, "spec": spec}


def test_kueue_stops_a_job_through_its_workload_and_gives_back_only_what_it_deactivated() -> None:
    assert kueue.queued({kueue.QUEUE_LABEL: "team-a"}) and not kueue.queued({}) and not kueue.queued(None)
    assert kueue.workload_of([workload()], "u-train") is not None and kueue.workload_of([workload()], "x") is None
    assert kueue.deactivate_patch(workload(), "site") == {
        "metadata": {"resourceVersion": "7", "annotations": {ann.MANAGED_BY: "site"}}, "spec": {"active": False}}
    assert kueue.deactivate_patch(workload(active=False), "site") is None, "someone else's deactivation stays theirs"
    held = workload(active=False, **{ann.MANAGED_BY: "site"})
    assert kueue.reactivate_patch(held, "site") == {"metadata": {"annotations": {ann.MANAGED_BY: None}},
                                                   "spec": {"active": True}}
    assert kueue.reactivate_patch(workload(active=False), "site") is None
    assert kueue.reactivate_patch(held, "other-site") is None
