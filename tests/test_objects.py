"""The cluster objects a period reads (operator.objects), without a cluster: the operator's watch
caches keep trimmed copies, and a policy's inventory read from them is the one a full listing gives."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from kubernetes import client

from gridshift.api.powerpolicy import LabelSelector, PowerPolicySpec
from gridshift.operator.inventory import InventoryReader
from gridshift.operator.objects import KEPT, KINDS, Snapshot, absent, kept, list_calls, projected, selected

SPEC = PowerPolicySpec.model_validate({
    "budget": {"capWatts": 100000}, "scope": {"nodeSelector": {"matchLabels": {"site": "a"}}},
    "workloads": {"wattsPerGpu": 500, "selector": {"matchLabels": {"team": "ml"}},
                  "namespaceSelector": {"matchLabels": {"gpu": "yes"}}}})
MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]


def node(name: str, site: str, gpus: int = 8) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"site": site}, "managedFields": MANAGED},
            "status": {"capacity": {"nvidia.com/gpu": str(gpus)}, "conditions": [{"type": "Ready"}]}}


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def pod(name: str, ns: str, node_name: str, job: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": {"job-name": job}, "uid": "u-" + name,
                         "ownerReferences": [{"kind": "Job", "name": job}], "managedFields": MANAGED,
                         "annotations": {"big": "x" * 1000}},
            "spec": {"nodeName": node_name, "volumes": [{"name": "data"}],
                     "containers": [{"name": "main", "image": "trainer", "env": [{"name": "A", "value": "1"}],
                                     "resources": {"limits": {"nvidia.com/gpu": "4"}}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [{"ready": True}]}}


def job(name: str, ns: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": {}, "managedFields": MANAGED},
            "spec": {"parallelism": 1, "template": {"spec": {"containers": [
                {"name": "main", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]}}},
            "status": {"active": 1}}


def deployment(name: str, ns: str, replicas: int, **notes: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": {"team": "ml"}, "managedFields": MANAGED,
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}" * 200, **notes}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"priorityClassName": "high", "containers": [
                    {"name": "srv", "image": "vllm", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas}}


def server_pod(name: str, ns: str, node_name: str, deploy: str) -> dict[str, Any]:
    out = pod(name, ns, node_name, "unused")
    out["metadata"]["labels"] = {"pod-template-hash": "h1"}
    out["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": f"{deploy}-h1"}]
    return out


def cluster() -> dict[str, list[dict[str, Any]]]:
    return {
        "nodes": [node("gpu-a1", "a"), node("gpu-a2", "a"), node("gpu-b1", "b")],
        "namespaces": [namespace("train", gpu="yes"), namespace("other")],
        "running_pods": [pod("llm-x", "train", "gpu-a1", "llm"), pod("far-x", "train", "gpu-b1", "far"),
                         pod("side-x", "other", "gpu-a2", "side"), pod("loose-x", "train", "gpu-a2", "loose"),
                         server_pod("chat-h1-a", "train", "gpu-a2", "chat")],
        "priority_classes": [{"metadata": {"name": "high", "managedFields": MANAGED}, "value": 7,
                              "description": "serving"}],
        "hpas": [{"metadata": {"name": "chat", "namespace": "train"}, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "chat", "apiVersion": "apps/v1"},
            "minReplicas": 2, "maxReplicas": 9, "metrics": []}}],
        "deployments": [deployment("chat", "train", 4, **{"gridshift.io/watts-per-replica": "700"})],
        "jobs": [job("llm", "train", team="ml"), job("far", "train", team="ml"), job("side", "other", team="ml"),
                 job("loose", "train", team="web")],
    }


def offline_reader() -> InventoryReader:
    """A reader whose API server does not exist: any list call it made would fail."""
    config = client.Configuration()
    config.host = "http://127.0.0.1:9"
    return InventoryReader(client.ApiClient(config))


def test_what_the_caches_keep_gives_the_inventory_of_the_full_objects() -> None:
    full = Snapshot.of(cluster())
    cached = Snapshot.of({kind: [kept(kind, o) for o in objs] for kind, objs in cluster().items()})
    reader = offline_reader()
    nodes = reader.nodes(SPEC.scope.node_selector, cached)
    assert nodes == reader.nodes(SPEC.scope.node_selector, full) == {"gpu-a1": 8, "gpu-a2": 8}
    inv = reader.read("pp", SPEC, nodes, objects=cached)
    # The workloads selected by the policy, in a selected namespace, with a pod on a governed node.
    assert [w.key for w in inv.workloads] == ["Deployment/train/chat", "Job/train/llm"]
    chat, llm = inv.workloads
    assert (chat.replicas, chat.watts_per_replica, chat.priority, chat.floor) == (4, 700, 7, 2)
    assert llm.watts_per_replica == 4 * 500
    assert inv == reader.read("pp", SPEC, nodes, objects=full)


def test_the_caches_keep_only_what_the_inventory_reads() -> None:
    original = pod("llm-x", "train", "gpu-a1", "llm")
    watched = copy.deepcopy(original)
    slim = kept("running_pods", watched)
    assert watched == original, "the cache copies; the watched object is left as it was"
    assert slim == {"metadata": {"name": "llm-x", "namespace": "train", "labels": {"job-name": "llm"},
                                 "ownerReferences": [{"kind": "Job", "name": "llm"}]},
                    "spec": {"nodeName": "gpu-a1", "containers": [
                        {"name": "main", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]},
                    "status": {"phase": "Running"}}
    assert kept("nodes", node("gpu-a1", "a")) == {"metadata": {"name": "gpu-a1", "labels": {"site": "a"}},
                                                  "status": {"capacity": {"nvidia.com/gpu": "8"}}}
    chat = kept("deployments", deployment("chat", "train", 4, **{"gridshift.io/priority": "3"}))
    assert chat["metadata"]["annotations"] == {"gridshift.io/priority": "3"}, "only gridshift's own annotations"
    assert chat["spec"] == {"replicas": 4, "template": {"spec": {"priorityClassName": "high", "containers": [
        {"name": "srv", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}}
    assert set(KINDS) == {"nodes", "namespaces", "running_pods", "priority_classes", "hpas", "deployments",
                          "statefulsets", "jobs", "jobsets", "pytorchjobs", "trainjobs", "rayjobs", "leaderworkersets"}
    assert set(list_calls(client.ApiClient())) == set(KINDS) == set(KEPT), "each kind listed, watched and kept"


def test_a_projection_leaves_absent_fields_absent() -> None:
    obj = {"a": {"b": 1, "c": [{"d": 1, "e": 2}, {"e": 3}]}, "z": None}
    assert projected(obj, ("a.c[].d", "a.c[].e", "a.x", "z.y", "q")) == {"a": {"c": [{"d": 1, "e": 2}, {"e": 3}]}}


def test_label_selection_is_the_api_servers() -> None:
    sel = LabelSelector.model_validate({
        "matchLabels": {"site": "a"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "y"]},
                             {"key": "spot", "operator": "DoesNotExist"}]})
    objs = [{"metadata": {"name": n, "labels": labels}} for n, labels in [
        ("ok", {"site": "a", "tier": "x"}), ("spot", {"site": "a", "tier": "y", "spot": "1"}),
        ("tierless", {"site": "a"}), ("other-site", {"site": "b", "tier": "x"}), ("bare", {})]]
    objs.append({"metadata": {"name": "no-labels"}})
    assert [o["metadata"]["name"] for o in selected(objs, sel)] == ["ok"]
    assert len(selected(objs, LabelSelector())) == len(objs), "an empty selector picks everything"


def test_a_snapshot_names_a_kind_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="pods"):
        Snapshot.of({"pods": []})
    assert Snapshot.of({"nodes": iter([node("n", "a")])}).nodes[0]["metadata"]["name"] == "n"
    assert Snapshot().workloads("jobs") == ()


def test_the_inventory_does_not_depend_on_the_order_the_objects_came_in() -> None:
    """A watch cache holds objects in the order their events came, a list in name order."""
    objs = cluster()
    objs["deployments"].append(deployment("aaa", "train", 1))
    objs["running_pods"] += [server_pod("chat-h1-b", "train", "gpu-a1", "chat"),
                             server_pod("aaa-h1-z", "train", "gpu-a1", "aaa")]
    reader = offline_reader()
    nodes = {"gpu-a1": 8, "gpu-a2": 8}
    reference = reader.read("pp", SPEC, nodes, objects=Snapshot.of(objs))
    for seed in range(5):
        rng = random.Random(seed)
        shuffled = {kind: rng.sample(items, len(items)) for kind, items in objs.items()}
        assert reader.read("pp", SPEC, nodes, objects=Snapshot.of(shuffled)) == reference
    assert [w.name for w in reference.workloads] == ["aaa", "chat", "llm"]
    assert reference.pods["Deployment/train/chat"] == ["chat-h1-a", "chat-h1-b"]


def test_a_workload_kind_the_cluster_lacks_reads_as_none_but_a_failing_base_kind_is_an_error() -> None:
    assert absent("rayjobs", client.ApiException(status=404)), "KubeRay's CRD is not installed"
    assert absent("jobsets", client.ApiException(status=403)), "the operator may not list JobSets"
    assert not absent("rayjobs", client.ApiException(status=500)), "a server error is retried, not ignored"
    assert not absent("running_pods", client.ApiException(status=403)), "the base kinds are never optional"
