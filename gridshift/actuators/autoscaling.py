"""How a scale-down lives beside a HorizontalPodAutoscaler (pure: the patches, no I/O).

An HPA scales its target back up as soon as its metric asks for more replicas, so writing the
target's replicas alone does not hold through a peak. While gridshift holds a workload down it also
lowers the HPA's ``maxReplicas`` to the replicas it left (never below the HPA's ``minReplicas``,
never above the HPA's own maximum), recording the HPA's maximum in
``gridshift.io/original-max-replicas``; the HPA controller then keeps the target there itself. Each
restore step raises the maximum with the replicas, and the last one puts the recorded maximum back
and removes the record, so the HPA's spec ends as it was.
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
