"""Kubeflow training-operator PyTorchJob: suspended whole through ``spec.runPolicy.suspend``; the pods
of each replica type (Master, Worker) are its own."""

from __future__ import annotations

from gridshift.workloads.kind import META, Obj, Shape, WorkloadKind, conditions_true, pooled, template_paths


def shape(obj: Obj) -> Shape:
    specs = (obj.get("spec") or {}).get("pytorchReplicaSpecs") or {}
    return pooled([(((s.get("template") or {}).get("spec")), int(s.get("replicas", 1)))
                   for _, s in sorted(specs.items())])


def finished(obj: Obj) -> bool:
    return conditions_true(obj, ("Succeeded", "Failed"))


KIND = WorkloadKind("PyTorchJob", "kubeflow.org", "v1", "pytorchjobs", "suspend", shape, finished,
                    kept=(*META, "spec.runPolicy.suspend", "status.conditions",
                          *(p for role in ("Master", "Worker")
                            for p in (f"spec.pytorchReplicaSpecs.{role}.replicas",
                                      *template_paths(f"spec.pytorchReplicaSpecs.{role}.template.spec")))),
                    suspend_path=("spec", "runPolicy", "suspend"))
