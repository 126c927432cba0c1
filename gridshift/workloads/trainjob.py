"""Kubeflow Trainer TrainJob: suspended whole through ``spec.suspend``; ``spec.trainer.numNodes`` nodes
(pods) with ``resourcesPerNode``. Its pods run in the JobSet it owns (the runtime's template, which
the TrainJob does not carry)."""

from __future__ import annotations

from gridshift.workloads.kind import META, Obj, Shape, WorkloadKind, conditions_true, pooled


def shape(obj: Obj) -> Shape:
    trainer = (obj.get("spec") or {}).get("trainer") or {}
    nodes = trainer.get("numNodes")
    pod = {"containers": [{"resources": trainer.get("resourcesPerNode") or {}}]}
    return pooled([(pod, 1 if nodes is None else int(nodes))])


def finished(obj: Obj) -> bool:
    return conditions_true(obj, ("Complete", "Failed"))


KIND = WorkloadKind("TrainJob", "trainer.kubeflow.org", "v1alpha1", "trainjobs", "suspend", shape, finished,
                    kept=(*META, "spec.suspend", "status.conditions", "spec.trainer.numNodes",
                          "spec.trainer.resourcesPerNode"))
