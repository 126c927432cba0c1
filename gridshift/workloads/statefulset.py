"""apps/v1 StatefulSet: shed through ``/scale``."""

from __future__ import annotations

from gridshift.workloads import deployment
from gridshift.workloads.kind import META, WorkloadKind, template_paths

KIND = WorkloadKind("StatefulSet", "apps", "v1", "statefulsets", "scale", deployment.shape, finished=lambda _: False,
                    kept=(*META, "spec.replicas", *template_paths("spec.template.spec")))
