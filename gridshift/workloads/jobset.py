"""jobset.x-k8s.io JobSet: suspended whole through ``spec.suspend``; its pods run in child Jobs it owns,
``replicas`` of each replicated Job with its ``parallelism`` pods."""

from __future__ import annotations

from gridshift.workloads.kind import META, Obj, Shape, WorkloadKind, conditions_true, pooled, template_paths


def shape(obj: Obj) -> Shape:
    members = []
    for rj in (obj.get("spec") or {}).get("replicatedJobs") or []:
        job = (rj.get("template") or {}).get("spec") or {}
        parallelism = job.get("parallelism")
        members.append((((job.get("template") or {}).get("spec")),
                        int(rj.get("replicas", 1)) * (1 if parallelism is None else int(parallelism))))
    return pooled(members)


def finished(obj: Obj) -> bool:
    return conditions_true(obj, ("Completed", "Failed"))


KIND = WorkloadKind("JobSet", "jobset.x-k8s.io", "v1alpha2", "jobsets", "suspend", shape, finished,
                    kept=(*META, "spec.suspend", "status.conditions", "spec.replicatedJobs[].replicas",
                          "spec.replicatedJobs[].template.spec.parallelism",
                          *template_paths("spec.replicatedJobs[].template.spec.template.spec")))
