"""The operator's inventory, without a cluster: what a policy governs, from the objects the API server
would list (operator.inventory.translate, battery_of, owner_key)."""

from __future__ import annotations

from typing import Any

from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.operator.inventory import Inventory, battery_of, hpa_floors, translate
from gridshift.workloads.registry import BY_KIND, owner_key

SPEC = PowerPolicySpec.model_validate({"budget": {"capWatts": 100000}, "workloads": {"wattsPerGpu": 500}})
NODES = {"gpu-1": 8, "gpu-2": 8}
NS = {"ml"}


def pod(name: str, node: str, owner: tuple[str, str] | None, ns: str = "ml", hash_: str = "abc12") -> dict[str, Any]:
    refs = [{"kind": owner[0], "name": owner[1]}] if owner else []
    return {"metadata": {"name": name, "namespace": ns, "ownerReferences": refs,
                         "labels": {"pod-template-hash": hash_}},
            "spec": {"nodeName": node}}


def workload(kind: str, name: str, *, gpus: int = 1, replicas: int = 2, ns: str = "ml",
             notes: dict[str, str] | None = None, labels: dict[str, str] | None = None,
             priority_class: str | None = None, **spec: Any) -> tuple[Any, dict[str, Any]]:
    template = {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}
    if priority_class:
        template["priorityClassName"] = priority_class  # type: ignore[assignment]
    body = {"template": {"spec": template}, **spec}
    body["parallelism" if kind == "Job" else "replicas"] = replicas
    meta = {"name": name, "namespace": ns, "annotations": notes or {}, "labels": labels or {}}
    return BY_KIND[kind], {"metadata": meta, "spec": body}


def inventory(running: list[dict[str, Any]], objects: list[tuple[Any, dict[str, Any]]], *, name: str = "site",
              priorities: dict[str, int] | None = None, floors: dict[str, int] | None = None,
              pod_watts: dict[tuple[str, str], float] | None = None) -> Inventory:
    return translate(name, SPEC, NODES, NS, running, objects, priorities or {}, floors or {}, pod_watts or {})


def test_pods_map_to_their_workload_through_the_owner_chain() -> None:
    assert owner_key(pod("web-abc12-x", "gpu-1", ("ReplicaSet", "web-abc12"))) == "Deployment/ml/web"
    assert owner_key(pod("db-0", "gpu-1", ("StatefulSet", "db"))) == "StatefulSet/ml/db"
    assert owner_key(pod("train-x", "gpu-1", ("Job", "train"))) == "Job/ml/train"
    assert owner_key(pod("bare", "gpu-1", None)) is None
    # a ReplicaSet not named after its template hash is not a Deployment's
    assert owner_key(pod("rs-x", "gpu-1", ("ReplicaSet", "standalone"), hash_="zzz")) is None


def test_only_workloads_with_pods_on_governed_nodes_in_governed_namespaces_count() -> None:
    running = [pod("web-abc12-1", "gpu-1", ("ReplicaSet", "web-abc12")),
               pod("far-abc12-1", "cpu-9", ("ReplicaSet", "far-abc12")),
               pod("other-abc12-1", "gpu-2", ("ReplicaSet", "other-abc12"), ns="kube-system")]
    objects = [workload("Deployment", "web"), workload("Deployment", "far"),
               workload("Deployment", "other", ns="kube-system")]
    inv = inventory(running, objects)
    assert [w.key for w in inv.workloads] == ["Deployment/ml/web"]
    assert inv.pods == {"Deployment/ml/web": ["web-abc12-1"]}
    assert inv.nodes == ["gpu-1", "gpu-2"]


def test_a_workload_this_policy_scaled_to_zero_stays_in_its_inventory() -> None:
    """No pod runs any more, but the policy must still be able to restore it (and another policy's is not ours)."""
    objects = [workload("Deployment", "mine", replicas=0, notes={ann.MANAGED_BY: "site", ann.ORIGINAL_REPLICAS: "3"}),
               workload("Deployment", "theirs", replicas=0, notes={ann.MANAGED_BY: "other-site"})]
    [mine] = inventory([], objects).workloads
    assert (mine.name, mine.replicas, mine.original_replicas, mine.managed_by) == ("mine", 0, 3, "site")


def test_watts_per_replica_prefer_measured_pod_power_then_the_annotation_then_gpus() -> None:
    running = [pod(f"{n}-abc12-{i}", "gpu-1", ("ReplicaSet", f"{n}-abc12")) for n in ("a", "b", "c") for i in (1, 2)]
    objects = [workload("Deployment", "a", gpus=2, notes={ann.WATTS_PER_REPLICA: "900"}),
               workload("Deployment", "b", gpus=2, notes={ann.WATTS_PER_REPLICA: "900"}),
               workload("Deployment", "c", gpus=2, notes={ann.WATTS_PER_REPLICA: "lots"})]
    measured = {("ml", "a-abc12-1"): 1000.0, ("ml", "a-abc12-2"): 1200.0}
    watts = {w.name: w.watts_per_replica for w in inventory(running, objects, pod_watts=measured).workloads}
    assert watts == {"a": 1100.0, "b": 900.0, "c": 2 * 500.0}  # an unreadable annotation falls back to GPUs


def test_priority_and_floor_come_from_annotations_before_classes_and_autoscalers() -> None:
    running = [pod(f"{n}-abc12-1", "gpu-1", ("ReplicaSet", f"{n}-abc12")) for n in ("x", "y")]
    objects = [workload("Deployment", "x", priority_class="high", notes={ann.PRIORITY: "7", ann.MIN_REPLICAS: "2"}),
               workload("Deployment", "y", priority_class="high")]
    floors = hpa_floors([{"metadata": {"namespace": "ml"},
                          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "y"}, "minReplicas": 3}},
                         {"metadata": {"namespace": "ml"},
                          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}}}])
    assert floors == {"Deployment/ml/y": 3, "Deployment/ml/x": 1}
    got = {w.name: (w.priority, w.floor) for w in inventory(running, objects, priorities={"high": 1000},
                                                                floors=floors).workloads}
    assert got == {"x": (7, 2), "y": (1000, 3)}


def test_jobs_have_no_floor_finished_ones_are_dropped_and_suspension_and_protection_are_read() -> None:
    running = [pod(f"{n}-p", "gpu-2", ("Job", n)) for n in ("train", "done", "held")]
    objects = [workload("Job", "train", replicas=4, labels={ann.PROTECTED: "true"}),
               workload("Job", "done"),
               workload("Job", "held", suspend=True, notes={ann.MANAGED_BY: "site"})]
    objects[1][1]["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    got = {w.name: w for w in inventory(running, objects).workloads}
    assert set(got) == {"train", "held"}
    assert (got["train"].replicas, got["train"].floor, got["train"].protected) == (4, 0, True)
    assert got["held"].suspended and got["held"].managed_by == "site"


def test_a_migratable_job_moving_is_left_to_the_migration_step() -> None:
    running = [pod("idle-p", "gpu-1", ("Job", "idle")), pod("moving-p", "gpu-1", ("Job", "moving"))]
    objects = [workload("Job", "idle", labels={ann.MIGRATABLE: "true"}, notes={ann.CHECKPOINT_BYTES: "1e9"}),
               workload("Job", "moving", labels={ann.MIGRATABLE: "true"},
                        notes={ann.MIGRATION: '{"phase": "Checkpointing", "to": "site-b"}'})]
    inv = inventory(running, objects)
    assert [w.name for w in inv.workloads] == ["idle"]
    movable = {j.name: j for j in inv.movable}
    assert movable["idle"].free and movable["idle"].checkpoint_bytes == 1e9
    assert movable["idle"].nodes == frozenset({"gpu-1"}) and movable["idle"].power_w == 2 * 500.0
    assert movable["moving"].moving and not movable["idle"].moving


def test_a_battery_not_ready_or_without_charge_is_skipped_with_the_reason() -> None:
    spec = {"capacityWattHours": 1000, "maxDischargeWatts": 500, "maxChargeWatts": 400, "setpointWatts": 200}
    ready = {"metadata": {"annotations": {ann.MANAGED_BY: "site"}}, "spec": spec,
             "status": {"socFraction": 0.6, "sohFraction": 0.9, "conditions": [{"type": "Ready", "status": "True"}]}}
    notes: list[str] = []
    state = battery_of("ess", ready, notes)
    assert state is not None and notes == []
    assert (state.soc_fraction, state.soh_fraction, state.setpoint_w, state.managed_by) == (0.6, 0.9, 200.0, "site")
    down = {**ready, "status": {"socFraction": 0.5, "conditions": [
        {"type": "Ready", "status": "False", "reason": "DeviceUnreachable", "message": "timed out"}]}}
    stranded: list = []
    assert battery_of("ess", down, notes, stranded) is None
    assert "not ready (DeviceUnreachable: timed out)" in notes[-1]
    assert stranded[0].setpoint_w == 200.0  # the setpoint left on it, to be cleared
    assert battery_of("ess", {**ready, "status": {}}, notes) is None
    assert "no state of charge yet" in notes[-1]
