"""Apply the planner's actions to Kubernetes objects. The only module that writes to workloads.

What a kind is and how it is shed (its ``/scale``, or its suspend field) comes from its plug-in
(``gridshift.workloads``); every kind is read and written through the same JSON path. A job Kueue
manages is stopped through its Kueue Workload (``gridshift.workloads.kueue``).

Every write records what it changed on the object it changed (``gridshift.io/managed-by``,
``gridshift.io/original-replicas``, ``gridshift.io/last-action-at``), so a restarted operator can
restore it; a workload under a HorizontalPodAutoscaler is held down through the HPA's maximum as
well (``gridshift.actuators.autoscaling``). Every write is idempotent: applying the same action
twice leaves the object as applying it once. The first write of a policy to an object carries the
object's resourceVersion, so when two policies race for the same object exactly one wins and the
other is told so. In dry-run nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client

from gridshift.actuators.autoscaling import (
    Autoscaler,
    ScaledObject,
    autoscaler_of,
    cap_patch,
    pause_patch,
    release_patch,
    scaled_object_of,
    unpause_patch,
)
from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import API_GROUP, API_VERSION
from gridshift.api.times import rfc3339
from gridshift.planner import Action
from gridshift.planner.charging import dwell_marks
from gridshift.workloads import kueue
from gridshift.workloads.kind import WorkloadKind
from gridshift.workloads.registry import BY_KIND

KEDA_GROUP, KEDA_VERSION = "keda.sh", "v1alpha1"
_CONFLICT = "changed under us (another policy or writer); will re-plan next period"

# client-go's retry.DefaultBackoff: a write that conflicts is retried after 10 ms, 50 ms, 250 ms and
# 1.25 s. Right after a Deployment is created or scaled its controller rewrites the status several
# times a second, so immediate retries can all lose to it.
CONFLICT_BACKOFF_S = (0.01, 0.05, 0.25, 1.25)

T = TypeVar("T")


def retry_on_conflict(write: Callable[[], T], conflicted: Callable[[T], bool],
                      backoff_s: tuple[float, ...] = CONFLICT_BACKOFF_S) -> T:
    """Run ``write`` (which reads, checks and writes with the read's resourceVersion) until its
    result is not ``conflicted`` or the backoff is spent; the last result is returned as it is."""
    for pause in backoff_s:
        result = write()
        if not conflicted(result):
            return result
        time.sleep(pause)
    return write()


@dataclass(frozen=True)
class Outcome:
    action: Action
    applied: bool
    message: str


def managed_elsewhere(annotations: dict[str, Any] | None, policy: str) -> str | None:
    """Why ``policy`` may not write an object carrying ``annotations`` (another policy manages it), or None."""
    owner = (annotations or {}).get(ann.MANAGED_BY)
    if owner not in (None, policy):
        return f"already managed by PowerPolicy {owner}"
    return None


class KubernetesActuator:
    """Writes one policy's actions; ``dry_run`` reports them only."""

    def __init__(self, api: client.ApiClient, policy: str, dry_run: bool):
        self.api = api
        self.policy = policy
        self.dry_run = dry_run
        self.custom = client.CustomObjectsApi(api)
        self.autoscaling = client.AutoscalingV2Api(api)

    def apply(self, action: Action, now: float) -> Outcome:
        """Write one action. A conflict (the object changed between our read and our write, e.g. its
        status) is retried from a fresh read, where the ownership check runs again."""
        if self.dry_run:
            return Outcome(action, False, f"dry-run: would {action.verb} {action.target}")
        return retry_on_conflict(lambda: self._apply_once(action, now),
                                 lambda outcome: outcome.message.endswith(_CONFLICT))

    def _apply_once(self, action: Action, now: float) -> Outcome:
        kind, _, rest = action.target.partition("/")
        try:
            if kind == "EnergyStorage":
                return self._battery(action, rest, now)
            namespace, _, name = rest.partition("/")
            plugin = BY_KIND.get(kind)
            if plugin is not None and plugin.shed == "scale":
                return self._scale(action, plugin, namespace, name, now)
            if plugin is not None:
                return self._suspendable(action, plugin, namespace, name, now)
        except client.ApiException as exc:
            if exc.status == 409:
                return Outcome(action, False, f"{action.target} {_CONFLICT}")
            if exc.status == 404:
                return Outcome(action, False, f"{action.target} no longer exists")
            return Outcome(action, False, f"{action.target}: API error {exc.status} {exc.reason}")
        return Outcome(action, False, f"unknown target kind {kind!r}")

    # -- helpers --------------------------------------------------------------------------------------------------

    def _claim(self, meta: dict[str, Any]) -> str | None:
        """The reason this policy may not write the object, or None."""
        return managed_elsewhere(meta.get("annotations"), self.policy)

    # Every kind through one path, /apis/<group>/<version>/namespaces/<ns>/<plural>/<name>, as JSON.
    def _read(self, kind: WorkloadKind, namespace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(kind.group, kind.version, namespace,
                                                                       kind.plural, name)
        return obj

    def _patch(self, kind: WorkloadKind, namespace: str, name: str, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural, name, body)

    def _patch_scale(self, kind: WorkloadKind, namespace: str, name: str, replicas: int) -> None:
        self.custom.patch_namespaced_custom_object_scale(kind.group, kind.version, namespace, kind.plural, name,
                                                         {"spec": {"replicas": replicas}})

    def _autoscaler(self, kind: str, namespace: str, name: str) -> Autoscaler | None:
        hpas = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
        return autoscaler_of(hpas, kind, name)

    def _scaled_object(self, kind: str, namespace: str, name: str) -> ScaledObject | None:
        try:
            listed = self.custom.list_namespaced_custom_object(KEDA_GROUP, KEDA_VERSION, namespace, "scaledobjects")
        except client.ApiException as exc:
            if exc.status == 404:  # KEDA is not installed
                return None
            raise
        return scaled_object_of(listed.get("items", []), kind, name)

    def _keda(self, action: Action, namespace: str, so: ScaledObject, current: int, original: int) -> Outcome:
        """A workload KEDA scales: paused at the replicas wanted, never written (KEDA owns its HPA)."""
        assert action.replicas is not None
        if action.verb == "scaleDown":
            target = min(action.replicas, current)
            patch = pause_patch(so, target, self.policy)
            did = f"paused its KEDA ScaledObject {so.name} at {target} replicas (KEDA scales it)"
        else:
            target = max(action.replicas, current)
            patch = unpause_patch(so, target, target >= original, self.policy)
            did = (f"gave its KEDA ScaledObject {so.name} back its own pause or autoscaling" if target >= original
                   else f"paused its KEDA ScaledObject {so.name} at {target} replicas")
        if patch is not None:
            self.custom.patch_namespaced_custom_object(KEDA_GROUP, KEDA_VERSION, namespace, "scaledobjects",
                                                       so.name, patch)
        return Outcome(action, True, f"{action.target}: {did}")

    def _patch_autoscaler(self, namespace: str, hpa: Autoscaler, patch: dict[str, Any] | None) -> str:
        """Apply ``patch`` to ``hpa``; what it changed, for the action's message."""
        if patch is None:
            return ""
        self.autoscaling.patch_namespaced_horizontal_pod_autoscaler(hpa.name, namespace, patch)
        return f"; HorizontalPodAutoscaler {hpa.name} maxReplicas {hpa.max_replicas} -> {patch['spec']['maxReplicas']}"

    # -- scale ------------------------------------------------------------------------------------------------------

    def _scale(self, action: Action, kind: WorkloadKind, namespace: str, name: str, now: float) -> Outcome:
        assert action.replicas is not None
        obj = self._read(kind, namespace, name)
        meta = obj["metadata"]
        if (why := self._claim(meta)) is not None:
            return Outcome(action, False, f"{action.target}: {why}")
        so = self._scaled_object(kind.kind, namespace, name)
        hpa = self._autoscaler(kind.kind, namespace, name) if so is None else None  # KEDA's HPA is KEDA's
        for owner, what in ((so, "KEDA ScaledObject"), (hpa, "HorizontalPodAutoscaler")):
            if owner is not None and (why := managed_elsewhere(owner.annotations, self.policy)) is not None:
                return Outcome(action, False, f"{action.target}: its {what} {owner.name} is {why}")
        current = kind.shape(obj).replicas
        notes = meta.get("annotations") or {}
        if action.verb == "scaleDown":
            original = notes.get(ann.ORIGINAL_REPLICAS) or str(current)
            # Record first (with the resourceVersion, so a concurrent writer makes this fail), then scale.
            self._patch(kind, namespace, name, {"metadata": {
                "resourceVersion": meta["resourceVersion"],
                "annotations": {ann.MANAGED_BY: self.policy, ann.ORIGINAL_REPLICAS: original,
                                ann.LAST_ACTION: rfc3339(now)}}})
            if so is not None:
                return self._keda(action, namespace, so, current, int(original))
            target = min(action.replicas, current)  # a scale-down planned on older data never adds replicas
            # The HPA's maximum before the replicas: it would otherwise scale the target straight back.
            held = self._patch_autoscaler(namespace, hpa, cap_patch(hpa, target, self.policy)) if hpa else ""
            self._patch_scale(kind, namespace, name, target)
            return Outcome(action, True, f"scaled {action.target} {current} -> {target} "
                                         f"(original {original} recorded){held}")
        original = int(notes.get(ann.ORIGINAL_REPLICAS, action.replicas))
        target = max(action.replicas, current)  # a restore never takes replicas away
        if so is not None:
            outcome = self._keda(action, namespace, so, current, original)
            self._release_record(kind, namespace, name, target >= original, now)
            return outcome
        # The HPA's maximum first (it would scale the target back down to it), the workload's record last:
        # a restore cut short leaves the workload recorded, and the next period finishes it.
        if hpa is not None:
            self._patch_autoscaler(namespace, hpa, release_patch(hpa, target, target >= original, self.policy))
        self._patch_scale(kind, namespace, name, target)
        self._release_record(kind, namespace, name, target >= original, now)
        if target >= original:
            return Outcome(action, True, f"restored {action.target} to {target} replicas; released")
        return Outcome(action, True, f"scaled {action.target} {current} -> {target} of {original}")

    def _release_record(self, kind: WorkloadKind, namespace: str, name: str, restored: bool, now: float) -> None:
        """After a restore step: the record removed once the workload is whole, else the step's time."""
        notes = dict.fromkeys(ann.GRIDSHIFT_WRITES) if restored else {ann.LAST_ACTION: rfc3339(now)}
        self._patch(kind, namespace, name, {"metadata": {"annotations": notes}})

    # -- suspendable kinds ------------------------------------------------------------------------------------------

    def _suspendable(self, action: Action, kind: WorkloadKind, namespace: str, name: str, now: float) -> Outcome:
        """A kind stopped whole (Job, JobSet, PyTorchJob, TrainJob, RayJob): asked to checkpoint, then
        suspended through its own field, or through its Kueue Workload when Kueue manages it."""
        obj = self._read(kind, namespace, name)
        meta = obj["metadata"]
        if (why := self._claim(meta)) is not None:
            return Outcome(action, False, f"{action.target}: {why}")
        stamp = rfc3339(now)
        rv = meta["resourceVersion"]
        queued = kueue.queued(meta.get("labels"))
        if action.verb == "checkpoint":
            self._patch(kind, namespace, name, {"metadata": {"resourceVersion": rv, "annotations": {
                ann.MANAGED_BY: self.policy, ann.CHECKPOINT_REQUESTED: stamp, ann.LAST_ACTION: stamp,
                ann.CHECKPOINT_COMPLETED: None}}})
            return Outcome(action, True, f"asked {action.target} to checkpoint ({ann.CHECKPOINT_REQUESTED})")
        if action.verb == "suspend":
            record = {"metadata": {"resourceVersion": rv,
                                   "annotations": {ann.MANAGED_BY: self.policy, ann.LAST_ACTION: stamp}}}
            if not queued:
                self._patch(kind, namespace, name, {**record, **kind.suspend_patch(True)})
                return Outcome(action, True, f"suspended {action.target}")
            self._patch(kind, namespace, name, record)  # the record first: a restart finds what it held
            return Outcome(action, True, f"{action.target}: {self._kueue(namespace, meta['uid'], True)}")
        if action.verb == "resume":
            clear = {"metadata": {"annotations": {**dict.fromkeys(ann.GRIDSHIFT_WRITES),
                                                  ann.CHECKPOINT_COMPLETED: None}}}
            was = "resumed" if kind.suspended(obj) else "withdrew the checkpoint request of"
            if not queued:
                self._patch(kind, namespace, name, {**clear, **kind.suspend_patch(False)})
                return Outcome(action, True, f"{was} {action.target}")
            did = self._kueue(namespace, meta["uid"], False)
            self._patch(kind, namespace, name, clear)  # the record last: a restore cut short is finished next period
            return Outcome(action, True, f"{action.target}: {did}")
        return Outcome(action, False, f"verb {action.verb} does not apply to a {kind.kind}")

    def _kueue(self, namespace: str, owner_uid: str, stop: bool) -> str:
        """Deactivate (``stop``) or reactivate the Kueue Workload of the object with ``owner_uid``; what
        was done, for the action's message."""
        for version in kueue.VERSIONS:
            try:
                listed = self.custom.list_namespaced_custom_object(kueue.GROUP, version, namespace, kueue.PLURAL)
            except client.ApiException as exc:
                if exc.status == 404:
                    continue  # this version is not served
                raise
            workload = kueue.workload_of(listed.get("items", []), owner_uid)
            if workload is None:
                break
            wname = workload["metadata"]["name"]
            patch = (kueue.deactivate_patch(workload, self.policy) if stop
                     else kueue.reactivate_patch(workload, self.policy))
            if patch is not None:
                self.custom.patch_namespaced_custom_object(kueue.GROUP, version, namespace, kueue.PLURAL, wname,
                                                           patch)
            if stop:
                return (f"deactivated its Kueue Workload {wname} (Kueue suspends it)" if patch is not None
                        else f"its Kueue Workload {wname} is already inactive")
            return (f"reactivated its Kueue Workload {wname}; released" if patch is not None
                    else f"released (its Kueue Workload {wname} was not deactivated by this policy)")
        return ("Kueue has not admitted it yet (no Workload): nothing to stop" if stop
                else "released (no Kueue Workload)")

    # -- battery ----------------------------------------------------------------------------------------------------

    def _battery(self, action: Action, name: str, now: float) -> Outcome:
        assert action.setpoint_w is not None
        obj = self.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "energystorages", name)
        if (why := managed_elsewhere(obj["metadata"].get("annotations"), self.policy)) is not None:
            return Outcome(action, False, f"{action.target}: {why}")
        stamp = rfc3339(now)
        notes: dict[str, str | None] = (dict.fromkeys((ann.MANAGED_BY, ann.LAST_ACTION)) if action.setpoint_w == 0
                                        else {ann.MANAGED_BY: self.policy, ann.LAST_ACTION: stamp})
        # When it last charged or discharged (kept after release: the dwell outlives the policy's hold).
        charged, discharged = dwell_marks(float(obj["spec"].get("setpointWatts", 0.0)), float(action.setpoint_w))
        if charged:
            notes[ann.LAST_CHARGE] = stamp
        if discharged:
            notes[ann.LAST_DISCHARGE] = stamp
        body = {"spec": {"setpointWatts": float(action.setpoint_w)}, "metadata": {
            "resourceVersion": obj["metadata"]["resourceVersion"], "annotations": notes}}
        self.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, "energystorages", name, body)
        return Outcome(action, True, f"set {action.target} setpoint to {action.setpoint_w:.0f} W")
