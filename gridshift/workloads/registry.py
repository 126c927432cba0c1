"""The workload kinds gridshift governs, and which of them a pod (or a child object) belongs to.

A pod belongs to the first kind whose label rule names it (a LeaderWorkerSet's), else to its controller
(a ReplicaSet stands for its Deployment); from there up through the listed objects' controllers (a
JobSet's child Job, a TrainJob's JobSet) and what they say they own (a RayJob's RayCluster) to the top
one, which is what gridshift sheds: a child is never shed under its parent's feet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gridshift.workloads import deployment, job, jobset, leaderworkerset, pytorchjob, rayjob, statefulset, trainjob
from gridshift.workloads.kind import Obj, WorkloadKind

KINDS: tuple[WorkloadKind, ...] = (deployment.KIND, statefulset.KIND, job.KIND, jobset.KIND, pytorchjob.KIND,
                                   trainjob.KIND, rayjob.KIND, leaderworkerset.KIND)
BY_KIND: dict[str, WorkloadKind] = {k.kind: k for k in KINDS}
_LABEL_RULES = tuple(k for k in KINDS if k.pod_owner is not None)  # read for every running pod


def kind_of(key: str) -> WorkloadKind | None:
    """The plug-in of a ``Kind/namespace/name`` key, or None for a kind gridshift does not shed."""
    return BY_KIND.get(key.partition("/")[0])


def controller_ref(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner that manages the object: the reference marked ``controller`` (else the only one)."""
    refs = meta.get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if len(refs) == 1 else None)


def _up(meta: Mapping[str, Any], own: str | None = None) -> str | None:
    """The workload key the object with ``meta`` belongs to, one step up (None: it is a top object)."""
    ns = meta.get("namespace")
    labels = meta.get("labels") or {}
    for kind in _LABEL_RULES:
        name = kind.pod_owner(labels) if kind.pod_owner else None
        if name and f"{kind.kind}/{ns}/{name}" != own:
            return f"{kind.kind}/{ns}/{name}"
    ref = controller_ref(meta)
    if ref is None:
        return None
    if ref["kind"] == "ReplicaSet":
        suffix = "-" + labels.get("pod-template-hash", "")
        if suffix != "-" and ref["name"].endswith(suffix):
            return f"Deployment/{ns}/{ref['name'][: -len(suffix)]}"
        return None
    return f"{ref['kind']}/{ns}/{ref['name']}"


def parents(objects: Iterable[tuple[WorkloadKind, Obj]]) -> dict[str, str]:
    """Each listed workload that belongs to another workload (its controller, or a label rule), and each
    unlisted object a workload owns (``WorkloadKind.owned``): key -> parent key."""
    out = {}
    for kind, obj in objects:
        key = kind.key(obj)
        up = _up(obj["metadata"], own=key)
        if up is not None and kind_of(up) is not None:
            out[key] = up
        for child in kind.owned(obj) if kind.owned else ():
            child_kind, _, child_name = child.partition("/")
            out[f"{child_kind}/{obj['metadata'].get('namespace')}/{child_name}"] = key
    return out


def owner_key(pod: Obj, parent: Mapping[str, str] | None = None) -> str | None:
    """The top workload a pod (JSON) belongs to, as ``Kind/namespace/name``, or None."""
    key = _up(pod["metadata"])
    seen: set[str] = set()
    while key is not None and parent and key in parent and key not in seen:
        seen.add(key)
        key = parent[key]
    return key if key is not None and kind_of(key) is not None else None
