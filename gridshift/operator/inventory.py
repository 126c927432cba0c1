"""What a policy governs, read from the cluster: its nodes, the workloads running on them (with
priority, floor, protection and watts per replica) and its battery. Read-only: ``InventoryReader``
takes the objects (``gridshift.operator.objects``: the operator's watch caches, or listed), the pure
``translate`` and ``battery_of`` turn them into the planner's terms."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import API_GROUP, API_VERSION, LabelSelector, PowerPolicySpec
from gridshift.api.resources import GPU_RESOURCE
from gridshift.api.times import parse_rfc3339
from gridshift.operator.objects import ClusterObjects, Listed, labels_of, selected
from gridshift.planner import BatteryState, Workload
from gridshift.workloads.kind import WorkloadKind
from gridshift.workloads.registry import KINDS as WORKLOAD_KINDS
from gridshift.workloads.registry import owner_key, parents


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


@dataclass(frozen=True)
class MovableJob:
    """A Job labelled gridshift.io/migratable=true, as the migration step sees it."""

    namespace: str
    name: str
    power_w: float
    checkpoint_bytes: float | None
    nodes: frozenset[str]             # nodes its running pods are on
    record: dict[str, Any] | None               # its gridshift.io/migration record
    managed_by: str | None            # the policy holding it (mid-move, or suspended by the ladder)
    free: bool                        # running, not suspended, not protected, not held by a policy

    @property
    def key(self) -> str:
        return f"Job/{self.namespace}/{self.name}"

    @property
    def moving(self) -> bool:
        return ann.in_flight(self.record)


@dataclass
class Inventory:
    nodes: list[str]
    workloads: list[Workload]
    pods: dict[str, list[str]] = field(default_factory=dict)  # workload key -> pod names on governed nodes
    battery: BatteryState | None = None
    # The policy's EnergyStorage while its device is not ready (unreachable, refusing): not a rung, but a
    # setpoint left on it would be applied whenever the device returns.
    stranded_battery: BatteryState | None = None
    notes: list[str] = field(default_factory=list)
    movable: list[MovableJob] = field(default_factory=list)  # migratable Jobs, moving ones included


class InventoryReader:
    def __init__(self, api: client.ApiClient):
        self.api = api
        self.custom = client.CustomObjectsApi(api)

    def listed(self) -> Listed:
        """The cluster's objects listed from the API server, each kind once when first read: for a
        caller without the operator's watch caches (``gridshift.operator.objects``)."""
        return Listed(self.api)

    def nodes(self, selector: LabelSelector, objects: ClusterObjects | None = None) -> dict[str, int]:
        """The nodes a selector picks (a policy's scope, a migration site): name -> GPU capacity."""
        nodes = selected((objects or self.listed()).nodes, selector)
        return {n["metadata"]["name"]: int(((n.get("status") or {}).get("capacity") or {}).get(GPU_RESOURCE, 0))
                for n in nodes}

    def node_labels(self, objects: ClusterObjects | None = None) -> dict[str, dict[str, str]]:
        """Every node's labels, by name (each migration site filters them locally)."""
        return {n["metadata"]["name"]: labels_of(n) for n in (objects or self.listed()).nodes}

    def read(self, name: str, spec: PowerPolicySpec, nodes: dict[str, int] | list[str],
             pod_watts: dict[tuple[str, str], float] | None = None,
             objects: ClusterObjects | None = None) -> Inventory:
        """Everything the planner needs to know about the policy's workloads, from ``objects`` (the
        operator's watch caches; listed from the API server when None)."""
        objects = objects or self.listed()
        namespaces = {n["metadata"]["name"] for n in selected(objects.namespaces, spec.workloads.namespace_selector)}
        priorities = {pc["metadata"]["name"]: pc.get("value", 0) for pc in objects.priority_classes}
        floors = hpa_floors(list(objects.hpas))
        # In the API server's list order whatever the source (a cache holds them in the order they came).
        listed = [(kind, o) for kind in WORKLOAD_KINDS for o in _by_name(objects.workloads(kind.plural))]
        inventory = translate(name, spec, nodes, namespaces, objects.running_pods, listed, priorities, floors,
                              pod_watts or {})
        if spec.storage is not None:
            stranded: list[BatteryState] = []
            inventory.battery = self.battery(spec.storage.energy_storage_ref, inventory.notes, stranded)
            inventory.stranded_battery = stranded[0] if stranded else None
        return inventory

    def battery(self, ref: str, notes: list[str], stranded: list[BatteryState] | None = None) -> BatteryState | None:
        """The policy's EnergyStorage as the planner sees it, or None (and why, in ``notes``). One that
        is not ready is appended to ``stranded`` (its setpoint and owner as they stand)."""
        try:
            obj = self.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "energystorages", ref)
        except client.ApiException as exc:
            why = "not found" if exc.status == 404 else exc.reason
            notes.append(f"EnergyStorage {ref}: {why}; battery rung skipped")
            return None
        return battery_of(ref, obj, notes, stranded)


def battery_of(ref: str, obj: dict[str, Any], notes: list[str],
               stranded: list[BatteryState] | None = None) -> BatteryState | None:
    """An EnergyStorage (JSON) as the planner sees it, or None (and why, in ``notes``): not ready (then
    appended to ``stranded``), or no state of charge reported yet."""
    ready = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    soc = (obj.get("status") or {}).get("socFraction")
    if ready is not None and ready.get("status") == "False":
        notes.append(f"EnergyStorage {ref} is not ready ({ready.get('reason')}: {ready.get('message')}); "
                     "battery rung skipped")
        if stranded is not None:
            stranded.append(_battery_state(ref, obj, float(soc) if soc is not None else 0.0))
        return None
    if soc is None:
        notes.append(f"EnergyStorage {ref} reports no state of charge yet; battery rung skipped")
        return None
    return _battery_state(ref, obj, float(soc))


def _battery_state(ref: str, obj: dict[str, Any], soc: float) -> BatteryState:
    spec, status = obj["spec"], obj.get("status") or {}
    marks = obj["metadata"].get("annotations") or {}
    return BatteryState(ref, soc_fraction=soc, capacity_wh=float(spec["capacityWattHours"]),
                        max_discharge_w=float(spec["maxDischargeWatts"]),
                        setpoint_w=float(spec.get("setpointWatts", 0.0)),
                        managed_by=marks.get(ann.MANAGED_BY),
                        soh_fraction=float(status["sohFraction"]) if status.get("sohFraction") is not None else 1.0,
                        max_charge_w=float(spec["maxChargeWatts"]),
                        last_charge_at=parse_rfc3339(marks.get(ann.LAST_CHARGE)),
                        last_discharge_at=parse_rfc3339(marks.get(ann.LAST_DISCHARGE)))


def _by_name(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objects, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))


def hpa_floors(hpas: list[dict[str, Any]]) -> dict[str, int]:
    """HorizontalPodAutoscalers (JSON) -> the minReplicas of each target, by workload key."""
    return {f"{h['spec']['scaleTargetRef']['kind']}/{h['metadata']['namespace']}/{h['spec']['scaleTargetRef']['name']}":
            h["spec"].get("minReplicas", 1) for h in hpas}


def translate(name: str, spec: PowerPolicySpec, nodes: dict[str, int] | list[str], namespaces: set[str],
              running: Sequence[dict[str, Any]], objects: list[tuple[WorkloadKind, dict[str, Any]]],
              priorities: dict[str, int], floors: dict[str, int], pod_watts: dict[tuple[str, str], float]) -> Inventory:
    """The policy ``name``'s inventory from what the cluster holds (JSON), pure: the top workloads among
    ``objects`` (every listed workload of every kind; a JobSet's child Jobs are its, not workloads of
    their own) that the policy's selector picks, in ``namespaces``, with running pods on ``nodes`` (or
    held by this policy), each with its replicas, watts per replica (measured pod power, else its
    annotation, else GPUs x the policy's watts per GPU), priority (annotation, else PriorityClass),
    floor (annotation, else its HPA's minReplicas), protection and gridshift's records; migratable Jobs
    also as ``movable``."""
    node_set = set(nodes)
    parent = parents(objects)
    pods: dict[str, list[str]] = defaultdict(list)
    placement: dict[str, set[str]] = defaultdict(set)
    measured: dict[str, list[float]] = defaultdict(list)
    for pod in running:
        meta = pod["metadata"]
        if pod["spec"].get("nodeName") not in node_set or meta.get("namespace") not in namespaces:
            continue
        key = owner_key(pod, parent)
        if key is None:
            continue
        pods[key].append(meta["name"])
        placement[key].add(pod["spec"]["nodeName"])
        if (meta["namespace"], meta["name"]) in pod_watts:
            measured[key].append(pod_watts[(meta["namespace"], meta["name"])])
    workloads, movable = [], []
    for kind, obj in objects:
        meta = obj["metadata"]
        key = kind.key(obj)
        notes = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        owner = notes.get(ann.MANAGED_BY)
        if (key in parent or meta["namespace"] not in namespaces or not spec.workloads.selector.matches(labels)
                or (key not in pods and owner != name) or kind.finished(obj)):
            continue
        shape = kind.shape(obj)
        wpr = _watts_per_replica(measured.get(key), shape.pods_per_replica, notes, shape.gpus_per_replica,
                                 spec.workloads.watts_per_gpu)
        priority = _int(notes.get(ann.PRIORITY))
        if priority is None:
            priority = priorities.get(shape.priority_class, 0)
        floor = 0 if kind.shed == "suspend" else (_int(notes.get(ann.MIN_REPLICAS)) or floors.get(key, 0) or 0)
        protected = ann.is_protected(labels, notes)
        if kind.kind == "Job" and labels.get(ann.MIGRATABLE) == "true":
            job = MovableJob(meta["namespace"], meta["name"], shape.replicas * wpr, ann.checkpoint_bytes(notes),
                             frozenset(placement.get(key, ())), ann.migration_record(notes), owner,
                             free=(key in pods and not kind.suspended(obj) and not protected and owner is None))
            movable.append(job)
            if job.moving:
                continue  # the migration step owns it until the move is over: the ladder leaves it alone
        workloads.append(Workload(
            kind=kind.kind, namespace=meta["namespace"], name=meta["name"], replicas=shape.replicas,
            watts_per_replica=wpr, priority=priority, floor=floor, protected=protected,
            suspended=kind.suspended(obj), managed_by=owner, suspendable=kind.shed == "suspend",
            original_replicas=_int(notes.get(ann.ORIGINAL_REPLICAS)),
            last_action_at=parse_rfc3339(notes.get(ann.LAST_ACTION)),
            checkpoint_requested_at=parse_rfc3339(notes.get(ann.CHECKPOINT_REQUESTED)),
            checkpoint_completed=bool(notes.get(ann.CHECKPOINT_COMPLETED)),
        ))
    return Inventory(sorted(node_set), workloads, {k: sorted(v) for k, v in pods.items()}, movable=movable)


def _watts_per_replica(measured: list[float] | None, pods_per_replica: int, notes: dict[str, str], gpus: float,
                       watts_per_gpu: float) -> float:
    """Measured pod power first (a replica's pods at their mean), then the annotation, then GPUs x the
    policy's watts per GPU."""
    if measured:
        return pods_per_replica * sum(measured) / len(measured)
    if ann.WATTS_PER_REPLICA in notes:
        try:
            return max(0.0, float(notes[ann.WATTS_PER_REPLICA]))
        except ValueError:
            pass
    return gpus * watts_per_gpu
