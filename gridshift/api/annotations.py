"""Labels and annotations gridshift reads and writes on workloads. They are part of the API:
admins set the first group, gridshift records its changes with the second, and a job (or its
checkpoint sidecar) answers the handshake with the third."""

import json
import math
from typing import Any

# Set by admins on Deployments, StatefulSets and Jobs.
PROTECTED = "gridshift.io/protected"                 # label or annotation "true": never touched
PRIORITY = "gridshift.io/priority"                   # integer; overrides the PriorityClass value
MIN_REPLICAS = "gridshift.io/min-replicas"           # floor for scale-down; overrides an HPA's minReplicas
WATTS_PER_REPLICA = "gridshift.io/watts-per-replica"  # used until pod-level power is measured
MIGRATABLE = "gridshift.io/migratable"               # label "true" on a Job: it may move to another site
CHECKPOINT_BYTES = "gridshift.io/checkpoint-bytes"   # on a Job: its checkpoint size; none declared, no move
PAUSED = "gridshift.io/paused"                       # annotation "true" on a PowerPolicy: change nothing, report

# Written by gridshift on what it changed, so that any operator process can restore it.
MANAGED_BY = "gridshift.io/managed-by"               # the PowerPolicy that changed the object
ORIGINAL_REPLICAS = "gridshift.io/original-replicas"  # replicas before the first scale-down
LAST_ACTION = "gridshift.io/last-action-at"          # RFC 3339; cooldown starts here
CHECKPOINT_REQUESTED = "gridshift.io/checkpoint-requested"  # RFC 3339; the handshake's question
LAST_CHARGE = "gridshift.io/last-charge-at"          # RFC 3339, on an EnergyStorage; the dwell starts here
LAST_DISCHARGE = "gridshift.io/last-discharge-at"    # RFC 3339, on an EnergyStorage
MIGRATION = "gridshift.io/migration"                 # JSON on a Job: a move's destination, phase and steps
ORIGINAL_MAX_REPLICAS = "gridshift.io/original-max-replicas"  # on an HPA: maxReplicas before gridshift lowered it
ORIGINAL_PAUSE = "gridshift.io/original-paused-replicas"  # on a KEDA ScaledObject: its owner's pause ("" none)

# KEDA's, on a ScaledObject: KEDA scales the target to this many replicas and stops autoscaling it.
KEDA_PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"

# Written by the job or its checkpoint sidecar.
CHECKPOINT_COMPLETED = "gridshift.io/checkpoint-completed"  # any non-empty value: checkpoint is safe

# Read by the telemetry twin (dev cluster and tests): which real trace a workload's GPUs replay.
POWER_TRACE = "gridshift.io/power-trace"
POWER_TRACE_OFFSET = "gridshift.io/power-trace-offset-seconds"  # where in the trace the replay starts
WATTS_PER_GPU = "gridshift.io/watts-per-gpu"

MIGRATION_IN_FLIGHT = ("Checkpointing", "Suspending", "Resuming")  # phases of a move not yet finished


def is_paused(annotations: dict[str, Any] | None) -> bool:
    """Whether a PowerPolicy carries PAUSED "true" (any case)."""
    return str((annotations or {}).get(PAUSED, "")).strip().lower() == "true"


def is_protected(labels: dict[str, Any] | None, annotations: dict[str, Any] | None) -> bool:
    """Whether an object is PROTECTED, by label or annotation; "true" in any case."""
    return any((notes or {}).get(PROTECTED, "").strip().lower() == "true" for notes in (labels, annotations))


def migration_record(annotations: dict[str, Any] | None) -> dict[str, Any] | None:
    """The move recorded in MIGRATION, or None (none recorded, or not a JSON object)."""
    text = (annotations or {}).get(MIGRATION)
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def in_flight(record: dict[str, Any] | None) -> bool:
    """Whether a migration record (``migration_record``) is a move not yet finished."""
    return record is not None and record.get("phase") in MIGRATION_IN_FLIGHT


def checkpoint_bytes(annotations: dict[str, Any] | None) -> float | None:
    """The declared CHECKPOINT_BYTES, or None when none is declared (or it is not a positive number)."""
    text = (annotations or {}).get(CHECKPOINT_BYTES)
    try:
        size = float(text) if text else None
    except ValueError:
        return None
    return size if size is not None and math.isfinite(size) and size > 0 else None


GRIDSHIFT_WRITES = (MANAGED_BY, ORIGINAL_REPLICAS, LAST_ACTION, CHECKPOINT_REQUESTED)
AUTOSCALER_WRITES = (MANAGED_BY, ORIGINAL_MAX_REPLICAS)  # what gridshift writes on a HorizontalPodAutoscaler
SCALED_OBJECT_WRITES = (MANAGED_BY, ORIGINAL_PAUSE)  # and on a KEDA ScaledObject, beside KEDA's pause
