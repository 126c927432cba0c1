"""One workload kind's plug-in: where its objects live in the API, what one of them runs (replicas,
pods and GPUs per replica, priority class), whether it has finished, and how it is shed and restored
(its replicas through ``/scale``, or a suspend field). Pure: JSON in, JSON out; the operator's
inventory reads through it and the actuator writes through it, so a new kind is one module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gridshift.api.resources import gpus_requested

Obj = dict[str, Any]
Shed = Literal["scale", "suspend"]


@dataclass(frozen=True)
class Shape:
    """What one object runs at full strength: ``replicas`` units of ``pods_per_replica`` pods that ask
    for ``gpus_per_replica`` GPUs together. A suspendable kind counts each pod as a replica (it is
    stopped whole, and its measured power is per pod)."""

    replicas: int
    pods_per_replica: int
    gpus_per_replica: float
    priority_class: str = ""


@dataclass(frozen=True)
class WorkloadKind:
    """A kind of workload gridshift can shed: ``shed`` says how (``scale``: the ``/scale``
    subresource; ``suspend``: the field at ``suspend_path``, stopped whole)."""

    kind: str
    group: str                      # "" for the core group
    version: str
    plural: str
    shed: Shed
    shape: Callable[[Obj], Shape]
    finished: Callable[[Obj], bool]
    kept: tuple[str, ...]           # what a watch cache keeps of an object (``objects.projected`` paths)
    suspend_path: tuple[str, ...] = ("spec", "suspend")
    # The name of this kind's object a pod (its labels) belongs to, when ownerReferences do not lead
    # there (a LeaderWorkerSet's worker pods belong to StatefulSets its leader pods own).
    pod_owner: Callable[[Mapping[str, str]], str | None] | None = None
    # Objects the inventory does not list that an object of this kind owns, as ``Kind/name`` (a RayJob's
    # RayCluster, which owns its pods).
    owned: Callable[[Obj], tuple[str, ...]] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def key(self, obj: Obj) -> str:
        meta = obj["metadata"]
        return f"{self.kind}/{meta.get('namespace')}/{meta['name']}"

    def suspended(self, obj: Obj) -> bool:
        """Whether a suspendable object is suspended now (a scalable one never is)."""
        return self.shed == "suspend" and bool(_at(obj, self.suspend_path))

    def suspend_patch(self, suspend: bool) -> Obj:
        """The merge patch that suspends (or resumes) an object of this kind."""
        if self.shed != "suspend":
            raise ValueError(f"{self.kind} is shed by scaling, not suspended")
        body: Obj = {self.suspend_path[-1]: suspend}
        for part in reversed(self.suspend_path[:-1]):
            body = {part: body}
        return body


def _at(obj: Mapping[str, Any], path: Iterable[str]) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)  # type: ignore[assignment]
    return obj


def pod_gpus(pod_spec: Obj | None) -> int:
    """GPUs one pod of a template asks for (its containers'; init containers run before and do not add)."""
    return gpus_requested((pod_spec or {}).get("containers"))


def pooled(members: list[tuple[Obj | None, int]], priority_class: str = "") -> Shape:
    """The shape of a suspendable object from its pod templates and how many pods each runs: every pod
    one replica, GPUs averaged over them."""
    pods = sum(max(0, n) for _, n in members)
    gpus = sum(pod_gpus(spec) * max(0, n) for spec, n in members)
    first = next((spec for spec, n in members if spec and n > 0), None) or {}
    return Shape(replicas=pods, pods_per_replica=1, gpus_per_replica=gpus / pods if pods else 0.0,
                 priority_class=priority_class or first.get("priorityClassName") or "")


def conditions_true(obj: Obj, types: Iterable[str]) -> bool:
    """Whether any status condition of ``types`` is True (a finished Job, JobSet, PyTorchJob, TrainJob)."""
    wanted = set(types)
    return any(c.get("type") in wanted and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def template_paths(prefix: str) -> tuple[str, ...]:
    """The pod template fields the inventory reads, under ``prefix`` (a pod template's ``spec``)."""
    return (f"{prefix}.containers[].name", f"{prefix}.containers[].resources", f"{prefix}.priorityClassName")


META = ("metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations",
        "metadata.ownerReferences")
