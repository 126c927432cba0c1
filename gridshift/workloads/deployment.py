"""apps/v1 Deployment: shed through ``/scale``; its pods belong to it through a ReplicaSet."""

from __future__ import annotations

from gridshift.workloads.kind import META, Obj, Shape, WorkloadKind, pod_gpus, template_paths


def shape(obj: Obj) -> Shape:
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    replicas = spec.get("replicas")
    return Shape(1 if replicas is None else int(replicas), 1, float(pod_gpus(pod)), pod.get("priorityClassName") or "")


KIND = WorkloadKind("Deployment", "apps", "v1", "deployments", "scale", shape, finished=lambda _: False,
                    kept=(*META, "spec.replicas", *template_paths("spec.template.spec")))
