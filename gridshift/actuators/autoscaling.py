"""How a scale-down lives beside an autoscaler (pure: the patches, no I/O).

An HPA scales its target back up as soon as its metric asks for more replicas, so writing the
target's replicas alone does not hold through a peak. While gridshift holds a workload down it also
lowers the HPA's ``maxReplicas`` to the replicas it left (never below the HPA's ``minReplicas``,
never above the HPA's own maximum), recording the HPA's maximum in
``gridshift.io/original-max-replicas``; the HPA controller then keeps the target there itself. Each
restore step raises the maximum with the replicas, and the last one puts the recorded maximum back
and removes the record, so the HPA's spec ends as it was.

A workload scaled by a KEDA ScaledObject is not written at all: KEDA owns the HPA it made and
would put it back. gridshift pauses the ScaledObject at the replicas it wants
(``autoscaling.keda.sh/paused-replicas``: KEDA scales the target there and stops autoscaling),
recording any pause its owner had set, and the last restore step puts that back (or removes the
pause, and KEDA autoscales again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridshift.api import annotations as ann


@dataclass(frozen=True)
class Autoscaler:
    """The fields of a HorizontalPodAutoscaler that a scale-down touches."""

    name: str
    min_replicas: int
    max_replicas: int
    annotations: dict[str, str]
    resource_version: str | None = None

    @property
    def recorded_max(self) -> int | None:
        """The maximum recorded before gridshift lowered it (None: none recorded or unreadable)."""
        text = self.annotations.get(ann.ORIGINAL_MAX_REPLICAS)
        try:
            value = int(text) if text is not None else None
        except ValueError:
            return None
        return value if value is not None and value >= 1 else None


def cap_patch(hpa: Autoscaler, replicas: int, policy: str) -> dict[str, Any] | None:
    """The patch that keeps ``hpa`` from scaling its target above ``replicas`` (a scale-down), with
    the HPA's own maximum recorded on the first one; None when its maximum already holds it there."""
    cap = min(max(replicas, hpa.min_replicas, 1), hpa.max_replicas)
    original = hpa.recorded_max or hpa.max_replicas
    if cap == hpa.max_replicas and hpa.annotations.get(ann.MANAGED_BY) == policy:
        return None
    return {"metadata": {"resourceVersion": hpa.resource_version,
                         "annotations": {ann.MANAGED_BY: policy, ann.ORIGINAL_MAX_REPLICAS: str(original)}},
            "spec": {"maxReplicas": cap}}


def release_patch(hpa: Autoscaler, replicas: int, restored: bool, policy: str) -> dict[str, Any] | None:
    """The patch for a restore step to ``replicas`` on an HPA this policy capped: its maximum raised
    with the replicas, or, once ``restored``, its recorded maximum back and the record removed. None
    when the HPA is not this policy's to change."""
    if hpa.annotations.get(ann.MANAGED_BY) != policy:
        return None
    original = hpa.recorded_max
    if restored or original is None:
        spec = {"maxReplicas": max(original or hpa.max_replicas, hpa.min_replicas)}
        return {"metadata": {"annotations": dict.fromkeys(ann.AUTOSCALER_WRITES)}, "spec": spec}
    return {"spec": {"maxReplicas": min(max(replicas, hpa.max_replicas), original)}}


def autoscaler_of(hpas: list[Any], kind: str, name: str) -> Autoscaler | None:
    """The HPA (``V2HorizontalPodAutoscaler`` objects of the workload's namespace) that scales
    ``kind``/``name``, or None."""
    for h in hpas:
        ref = h.spec.scale_target_ref
        if ref.kind == kind and ref.name == name:
            return Autoscaler(h.metadata.name, h.spec.min_replicas or 1, h.spec.max_replicas,
                              dict(h.metadata.annotations or {}), h.metadata.resource_version)
    return None


@dataclass(frozen=True)
class ScaledObject:
    """A KEDA ScaledObject's name and annotations."""

    name: str
    annotations: dict[str, str]
    resource_version: str | None = None


def pause_patch(so: ScaledObject, replicas: int, policy: str) -> dict[str, Any] | None:
    """The patch that pauses ``so`` at ``replicas`` (a scale-down), recording its owner's pause on
    the first one; None when it is paused there by this policy already."""
    notes = so.annotations
    ours = notes.get(ann.MANAGED_BY) == policy
    if ours and notes.get(ann.KEDA_PAUSED_REPLICAS) == str(replicas):
        return None
    original = notes.get(ann.ORIGINAL_PAUSE, "") if ours else notes.get(ann.KEDA_PAUSED_REPLICAS, "")
    return {"metadata": {"resourceVersion": so.resource_version, "annotations": {
        ann.MANAGED_BY: policy, ann.ORIGINAL_PAUSE: original, ann.KEDA_PAUSED_REPLICAS: str(replicas)}}}


def unpause_patch(so: ScaledObject, replicas: int, restored: bool, policy: str) -> dict[str, Any] | None:
    """The patch for a restore step to ``replicas`` on a ScaledObject this policy paused: paused
    higher, or, once ``restored``, its owner's pause back (none: KEDA autoscales again) and the
    record removed. None when it is not this policy's to change."""
    if so.annotations.get(ann.MANAGED_BY) != policy:
        return None
    if restored:
        original = so.annotations.get(ann.ORIGINAL_PAUSE) or None
        return {"metadata": {"annotations": {**dict.fromkeys(ann.SCALED_OBJECT_WRITES),
                                             ann.KEDA_PAUSED_REPLICAS: original}}}
    return {"metadata": {"annotations": {ann.KEDA_PAUSED_REPLICAS: str(replicas)}}}


def scaled_object_of(scaled_objects: list[dict[str, Any]], kind: str, name: str) -> ScaledObject | None:
    """The ScaledObject (JSON, of the workload's namespace) whose target is ``kind``/``name``, or None
    (its ``scaleTargetRef.kind`` defaults to Deployment, as KEDA's does)."""
    for so in scaled_objects:
        ref = (so.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind", "Deployment") == kind and ref.get("name") == name:
            meta = so.get("metadata") or {}
            return ScaledObject(meta.get("name", ""), dict(meta.get("annotations") or {}), meta.get("resourceVersion"))
    return None
