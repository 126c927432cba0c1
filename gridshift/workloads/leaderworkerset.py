"""LeaderWorkerSet: shed through ``/scale`` a group at a time (a replica is a leader and ``size - 1``
workers); its pods carry its name in ``leaderworkerset.sigs.k8s.io/name`` (the worker StatefulSets
belong to the leader pods, not to it)."""

from __future__ import annotations

from collections.abc import Mapping

from gridshift.workloads.kind import META, Obj, Shape, WorkloadKind, pod_gpus, template_paths

NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"


def shape(obj: Obj) -> Shape:
    spec = obj.get("spec") or {}
    lwt = spec.get("leaderWorkerTemplate") or {}
    size = int(lwt.get("size", 1))
    worker = ((lwt.get("workerTemplate") or {}).get("spec")) or {}
    leader = ((lwt.get("leaderTemplate") or {}).get("spec")) or worker
    replicas = spec.get("replicas")
    return Shape(1 if replicas is None else int(replicas), size,
                 float(pod_gpus(leader) + (size - 1) * pod_gpus(worker)),
                 leader.get("priorityClassName") or worker.get("priorityClassName") or "")


def pod_owner(labels: Mapping[str, str]) -> str | None:
    return labels.get(NAME_LABEL)


KIND = WorkloadKind("LeaderWorkerSet", "leaderworkerset.x-k8s.io", "v1", "leaderworkersets", "scale", shape,
                    finished=lambda _: False,
                    kept=(*META, "spec.replicas", "spec.leaderWorkerTemplate.size",
                          *template_paths("spec.leaderWorkerTemplate.leaderTemplate.spec"),
                          *template_paths("spec.leaderWorkerTemplate.workerTemplate.spec")),
                    pod_owner=pod_owner)
