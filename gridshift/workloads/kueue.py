"""Kueue: a job labelled with a queue is admitted and suspended by Kueue, through its Workload. gridshift
stops such a job by deactivating the Workload (``spec.active: false``: Kueue evicts it and suspends the
job) and restores it by reactivating it; it never toggles the job's own suspend under Kueue. The
Workload carries gridshift's mark while it is held, so a Workload someone else deactivated is left to
them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gridshift.api import annotations as ann
from gridshift.workloads.kind import Obj

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
GROUP = "kueue.x-k8s.io"
VERSIONS = ("v1beta2", "v1beta1")  # newest first: Kueue 0.15+ serves v1beta2
PLURAL = "workloads"


def queued(labels: Mapping[str, str] | None) -> bool:
    """Whether Kueue manages the object with these labels."""
    return bool((labels or {}).get(QUEUE_LABEL))


def workload_of(workloads: Iterable[Obj], owner_uid: str) -> Obj | None:
    """The Kueue Workload owned by the object with ``owner_uid``, or None (not created yet)."""
    for w in workloads:
        if any(r.get("uid") == owner_uid for r in (w.get("metadata") or {}).get("ownerReferences") or []):
            return w
    return None


def active(workload: Obj) -> bool:
    return (workload.get("spec") or {}).get("active", True) is not False


def deactivate_patch(workload: Obj, policy: str) -> dict[str, Any] | None:
    """The patch that deactivates ``workload`` for ``policy`` (None: already inactive, by someone else
    or by this policy)."""
    if not active(workload):
        return None
    return {"metadata": {"resourceVersion": workload["metadata"]["resourceVersion"],
                         "annotations": {ann.MANAGED_BY: policy}},
            "spec": {"active": False}}


def reactivate_patch(workload: Obj, policy: str) -> dict[str, Any] | None:
    """The patch that gives ``workload`` back to Kueue (None: this policy did not deactivate it)."""
    if ((workload.get("metadata") or {}).get("annotations") or {}).get(ann.MANAGED_BY) != policy:
        return None
    return {"metadata": {"annotations": {ann.MANAGED_BY: None}}, "spec": {"active": True}}
