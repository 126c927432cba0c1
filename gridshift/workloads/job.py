"""batch/v1 Job: suspended whole through ``spec.suspend``; ``spec.parallelism`` pods."""

from __future__ import annotations

from gridshift.workloads.kind import META, Obj, Shape, WorkloadKind, conditions_true, pooled, template_paths


def shape(obj: Obj) -> Shape:
    spec = obj.get("spec") or {}
    parallelism = spec.get("parallelism")
    return pooled([(((spec.get("template") or {}).get("spec")), 1 if parallelism is None else int(parallelism))])


def finished(obj: Obj) -> bool:
    return conditions_true(obj, ("Complete", "Failed"))


KIND = WorkloadKind("Job", "batch", "v1", "jobs", "suspend", shape, finished,
                    kept=(*META, "spec.parallelism", "spec.suspend", "status.conditions",
                          *template_paths("spec.template.spec")))
