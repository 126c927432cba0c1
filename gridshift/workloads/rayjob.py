"""KubeRay RayJob: suspended whole through ``spec.suspend`` (KubeRay then deletes its RayCluster); the
head and each worker group's ``replicas`` (times ``numOfHosts``) pods. Its pods belong to the RayCluster
it created (``status.rayClusterName``), which the inventory does not list."""

from __future__ import annotations

from gridshift.workloads.kind import META, Obj, Shape, WorkloadKind, pooled, template_paths


def shape(obj: Obj) -> Shape:
    cluster = (obj.get("spec") or {}).get("rayClusterSpec") or {}
    head = (((cluster.get("headGroupSpec") or {}).get("template") or {}).get("spec"))
    members = [(head, 1)]
    for group in cluster.get("workerGroupSpecs") or []:
        replicas = group.get("replicas", group.get("minReplicas", 0))
        members.append((((group.get("template") or {}).get("spec")),
                        int(replicas) * int(group.get("numOfHosts", 1))))
    return pooled(members)


def finished(obj: Obj) -> bool:
    return (obj.get("status") or {}).get("jobDeploymentStatus") in ("Complete", "Failed")


def owned(obj: Obj) -> tuple[str, ...]:
    cluster = (obj.get("status") or {}).get("rayClusterName")
    return (f"RayCluster/{cluster}",) if cluster else ()


KIND = WorkloadKind("RayJob", "ray.io", "v1", "rayjobs", "suspend", shape, finished,
                    kept=(*META, "spec.suspend", "status.jobDeploymentStatus", "status.rayClusterName",
                          *template_paths("spec.rayClusterSpec.headGroupSpec.template.spec"),
                          "spec.rayClusterSpec.workerGroupSpecs[].replicas",
                          "spec.rayClusterSpec.workerGroupSpecs[].minReplicas",
                          "spec.rayClusterSpec.workerGroupSpecs[].numOfHosts",
                          *template_paths("spec.rayClusterSpec.workerGroupSpecs[].template.spec")),
                    owned=owned)
