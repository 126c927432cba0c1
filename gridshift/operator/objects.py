"""The cluster objects a control period reads, as plain JSON: nodes, namespaces, running pods,
PriorityClasses, HPAs and the workloads of every kind a policy may govern (``gridshift.workloads``).

Two sources give the same view. In the operator, watch streams keep them in memory
(``gridshift.operator.watching``) and each period reads a ``Snapshot`` of them: no list call at all,
so the period's cost no longer grows with a list of every pod and workload per policy per period,
and every policy shares the one copy. Elsewhere (a policy's release, a test calling the controller,
a period before the caches have listed every kind) ``Listed`` lists each kind from the API server
on first use within a period. Label selection is local in both (``selected``), as the API server decides it
(``LabelSelector.matches``). A cache keeps of each object only what the inventory reads (``kept``),
which keeps the in-memory copy of a large cluster small. A workload kind whose CRD is not installed
(or that the operator may not list) reads as none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes import client

from gridshift.api.powerpolicy import LabelSelector
from gridshift.api.resources import list_items
from gridshift.workloads.registry import KINDS as WORKLOAD_KINDS

Obj = dict[str, Any]
BASE_KINDS = ("nodes", "namespaces", "running_pods", "priority_classes", "hpas")
KINDS = (*BASE_KINDS, *(k.plural for k in WORKLOAD_KINDS))


def absent(kind: str, exc: client.ApiException) -> bool:
    """Whether a failed list of ``kind`` means a workload kind this cluster does not have for the
    operator: the API server does not serve it (404: its CRD is not installed) or may not list it (403).
    The base kinds are never absent."""
    return kind not in BASE_KINDS and exc.status in (403, 404)


class ClusterObjects(Protocol):
    """What a period reads of the cluster (each kind a sequence of JSON objects)."""

    @property
    def nodes(self) -> Sequence[Obj]: ...
    @property
    def namespaces(self) -> Sequence[Obj]: ...
    @property
    def running_pods(self) -> Sequence[Obj]: ...
    @property
    def priority_classes(self) -> Sequence[Obj]: ...
    @property
    def hpas(self) -> Sequence[Obj]: ...
    def workloads(self, plural: str) -> Sequence[Obj]:
        """The objects of one workload kind (by its plural, ``WorkloadKind.plural``)."""


@dataclass(frozen=True)
class Snapshot:
    """The objects as the watch streams held them at one moment (a period's consistent copy)."""

    nodes: Sequence[Obj] = ()
    namespaces: Sequence[Obj] = ()
    running_pods: Sequence[Obj] = ()
    priority_classes: Sequence[Obj] = ()
    hpas: Sequence[Obj] = ()
    workload_objects: Mapping[str, Sequence[Obj]] = field(default_factory=dict)

    def workloads(self, plural: str) -> Sequence[Obj]:
        return self.workload_objects.get(plural, ())

    @classmethod
    def of(cls, stores: Mapping[str, Iterable[Obj]]) -> Snapshot:
        """A snapshot from one store of objects per kind (``KINDS``); a kind not given is empty."""
        unknown = set(stores) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; expected some of {KINDS}")
        return cls(**{kind: tuple(objects) for kind, objects in stores.items() if kind in BASE_KINDS},
                   workload_objects={kind: tuple(objects) for kind, objects in stores.items()
                                     if kind not in BASE_KINDS})


def list_calls(api: client.ApiClient) -> dict[str, tuple[Callable[..., Any], dict[str, str]]]:
    """How each kind (``KINDS``) is listed, and watched: the client's list method and its selectors."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    calls: dict[str, tuple[Callable[..., Any], dict[str, str]]] = {
        "nodes": (core.list_node, {}),
        "namespaces": (core.list_namespace, {}),
        "running_pods": (core.list_pod_for_all_namespaces, {"field_selector": "status.phase=Running"}),
        "priority_classes": (client.SchedulingV1Api(api).list_priority_class, {}),
        "hpas": (client.AutoscalingV2Api(api).list_horizontal_pod_autoscaler_for_all_namespaces, {}),
    }
    for kind in WORKLOAD_KINDS:  # every group through the same path: /apis/<group>/<version>/<plural>
        calls[kind.plural] = (functools.partial(custom.list_cluster_custom_object, kind.group, kind.version,
                                                kind.plural), {})
    return calls


class Listed:
    """The objects listed from the API server, each kind once, when first read."""

    def __init__(self, api: client.ApiClient):
        self._calls = list_calls(api)
        self._listed: dict[str, Sequence[Obj]] = {}

    def _list(self, kind: str) -> Sequence[Obj]:
        if kind not in self._listed:
            call, selectors = self._calls[kind]
            try:
                self._listed[kind] = list_items(call, **selectors)
            except client.ApiException as exc:
                if not absent(kind, exc):
                    raise
                self._listed[kind] = ()
        return self._listed[kind]

    @property
    def nodes(self) -> Sequence[Obj]:
        return self._list("nodes")

    @property
    def namespaces(self) -> Sequence[Obj]:
        return self._list("namespaces")

    @property
    def running_pods(self) -> Sequence[Obj]:
        return self._list("running_pods")

    @property
    def priority_classes(self) -> Sequence[Obj]:
        return self._list("priority_classes")

    @property
    def hpas(self) -> Sequence[Obj]:
        return self._list("hpas")

    def workloads(self, plural: str) -> Sequence[Obj]:
        return self._list(plural)


def labels_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def selected(objects: Iterable[Obj], selector: LabelSelector) -> list[Obj]:
    """The objects whose labels ``selector`` picks."""
    return [o for o in objects if selector.matches(labels_of(o))]


# What the inventory reads of each kind (``projected`` paths; ``[]`` maps over a list). A watch cache
# keeps only these: a node's conditions and images, a pod's status and the rest of its spec, a
# workload's other annotations (``kubectl.kubernetes.io/last-applied-configuration`` is a copy of the
# whole object) would otherwise be held for every object of a large cluster.
KEPT: dict[str, tuple[str, ...]] = {
    "nodes": ("metadata.name", "metadata.labels", "status.capacity"),
    "namespaces": ("metadata.name", "metadata.labels"),
    "running_pods": ("metadata.name", "metadata.namespace", "metadata.labels", "metadata.ownerReferences",
                     "spec.nodeName", "spec.containers[].name", "spec.containers[].resources", "status.phase"),
    "priority_classes": ("metadata.name", "value"),
    "hpas": ("metadata.namespace", "spec.scaleTargetRef", "spec.minReplicas"),
    **{kind.plural: kind.kept for kind in WORKLOAD_KINDS},
}
OWN_ANNOTATIONS = "gridshift.io/"


def projected(obj: Mapping[str, Any], paths: Iterable[str]) -> Obj:
    """A copy of ``obj`` with only the fields at ``paths`` (dotted; ``name[]`` maps the rest of the
    path over the list ``name``). Fields that are absent stay absent."""
    out: Obj = {}
    for path in paths:
        _project(obj, path.split("."), out)
    return out


def _project(src: Mapping[str, Any], parts: list[str], out: Obj) -> None:
    head, rest = parts[0], parts[1:]
    listed = head.endswith("[]")
    key = head[:-2] if listed else head
    if not isinstance(src, Mapping) or key not in src:
        return
    value = src[key]
    if not rest:
        out[key] = value
    elif listed:
        if isinstance(value, list):
            into = out.setdefault(key, [{} for _ in value])
            for item, part in zip(value, into, strict=True):
                _project(item, rest, part)
    elif isinstance(value, Mapping):
        _project(value, rest, out.setdefault(key, {}))


def kept(kind: str, obj: Mapping[str, Any]) -> Obj:
    """What a watch cache keeps of an object of ``kind`` (one of ``KINDS``): the fields the inventory
    reads (``KEPT``), and of its annotations only gridshift's own."""
    out = projected(obj, KEPT[kind])
    notes = (out.get("metadata") or {}).get("annotations")
    if notes:
        out["metadata"]["annotations"] = {k: v for k, v in notes.items() if k.startswith(OWN_ANNOTATIONS)}
    return out
