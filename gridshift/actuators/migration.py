"""Move a checkpointed Job to the nodes of another site in this cluster, one step per call, with
every step recorded on the Job (``gridshift.io/migration``) so that a restarted operator finishes
the move or rolls it back.

The steps, each taken only when the previous one shows on the object:

1. ``Checkpointing``: the checkpoint handshake is asked (``gridshift.io/checkpoint-requested``);
2. ``Suspending``: the checkpoint is confirmed, the Job is suspended and its pods go;
3. ``Resuming``: with no pod left, its start time is cleared (Kubernetes lets the scheduling
   directives of a suspended Job change only without one; Kueue does the same) and the pod
   template's node selector (and node affinity, for selector expressions) is pointed at the
   destination site, in the same write as the record;
4. ``Moved``: the Job is resumed and its pods are scheduled on the destination's nodes.

A Job already moving is never moved again; a move whose checkpoint does not come within the
deadline, or whose retarget the API server refuses, rolls back: the template is put back and the
Job resumed where it was (``RolledBack``, with the reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from gridshift.actuators.kubernetes import managed_elsewhere, retry_on_conflict
from gridshift.api import annotations as ann
from gridshift.api.times import parse_rfc3339, rfc3339

_RECORD_PATH = "/metadata/annotations/" + ann.MIGRATION.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class StepOutcome:
    phase: str       # the phase the Job is in after this call
    changed: bool    # whether this call wrote anything
    message: str


def migration_record(job: Any) -> dict[str, Any] | None:
    """The move recorded on ``job`` (a V1Job), or None."""
    return ann.migration_record(job.metadata.annotations)


class JobMigrator:
    """Moves one policy's Jobs between sites given by label selectors on nodes."""

    def __init__(self, api: client.ApiClient, policy: str):
        self.api = api
        self.policy = policy
        self.batch = client.BatchV1Api(api)

    def start(self, namespace: str, name: str, site: str, selector: dict[str, Any], now: float,
              why: str) -> StepOutcome:
        """Ask the Job to checkpoint for a move to ``site`` (nodes matching ``selector``, a
        LabelSelector as a dict). Refused for a Job that is not migratable, declares no checkpoint
        size, is protected, belongs to another policy or is already moving. The write carries the
        resourceVersion read, so a concurrent writer makes it fail; a conflict (the Job controller
        updating its status, say) is retried from a fresh read, where every check runs again."""
        def once() -> StepOutcome | client.ApiException:
            try:
                return self._start_once(namespace, name, site, selector, now, why)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
                return exc

        result = retry_on_conflict(once, lambda r: isinstance(r, client.ApiException))
        if isinstance(result, client.ApiException):
            raise result
        return result

    def _start_once(self, namespace: str, name: str, site: str, selector: dict[str, Any], now: float,
                    why: str) -> StepOutcome:
        job = self.batch.read_namespaced_job(name, namespace)
        labels, notes = job.metadata.labels or {}, job.metadata.annotations or {}
        record = migration_record(job)
        refusal = None
        if labels.get(ann.MIGRATABLE) != "true":
            refusal = f"not labelled {ann.MIGRATABLE}=true"
        elif ann.checkpoint_bytes(notes) is None:
            refusal = f"declares no {ann.CHECKPOINT_BYTES}"
        elif ann.is_protected(labels, notes):
            refusal = "protected"
        elif (claimed := managed_elsewhere(notes, self.policy)) is not None:
            refusal = claimed
        elif record is not None and ann.in_flight(record):
            refusal = f"already moving to {record.get('to')} ({record.get('phase')})"
        elif job.spec.suspend:
            refusal = "suspended"
        elif notes.get(ann.CHECKPOINT_REQUESTED):
            refusal = "its checkpoint for the peak ladder is in progress"
        if refusal is not None:
            return StepOutcome(_phase(record), False, f"Job/{namespace}/{name}: {refusal}")
        stamp = rfc3339(now)
        record = {"to": site, "selector": selector, "phase": "Checkpointing", "reason": why, "startedAt": stamp,
                  "steps": [["Checkpointing", stamp]]}
        self.batch.patch_namespaced_job(name, namespace, {"metadata": {
            "resourceVersion": job.metadata.resource_version, "annotations": {
                ann.MANAGED_BY: self.policy, ann.CHECKPOINT_REQUESTED: stamp, ann.LAST_ACTION: stamp,
                ann.CHECKPOINT_COMPLETED: None, ann.MIGRATION: json.dumps(record)}}})
        return StepOutcome("Checkpointing", True, f"asked Job/{namespace}/{name} to checkpoint for a move to {site}")

    def advance(self, namespace: str, name: str, now: float, deadline_s: float) -> StepOutcome:
        """Take the next step of the Job's move if it is due; roll back a checkpoint that did not
        come within ``deadline_s``."""
        job = self.batch.read_namespaced_job(name, namespace)
        record = migration_record(job)
        key = f"Job/{namespace}/{name}"
        if record is None or not ann.in_flight(record):
            return StepOutcome(_phase(record), False, f"{key}: no move in flight")
        notes = job.metadata.annotations or {}
        phase = record["phase"]
        if phase == "Checkpointing":
            if notes.get(ann.CHECKPOINT_COMPLETED):
                return self._write(job, record, "Suspending", now, spec={"suspend": True},
                                   message=f"checkpoint confirmed; suspended {key} to move it")
            asked = parse_rfc3339(notes.get(ann.CHECKPOINT_REQUESTED)) or now
            if now - asked >= deadline_s:
                return self.rollback(namespace, name, now, f"no checkpoint within {deadline_s:.0f} s")
            return StepOutcome(phase, False, f"{key}: waiting for its checkpoint")
        if phase == "Suspending":
            if (job.status.active or 0) > 0:
                return StepOutcome(phase, False, f"{key}: waiting for its pods to stop")
            if job.status.start_time is not None:
                # As Kueue does: the Job controller keeps the start time of a suspended Job, and the
                # API server lets its scheduling directives change only without one.
                self.batch.patch_namespaced_job_status(name, namespace, {"status": {"startTime": None}})
                job = self.batch.read_namespaced_job(name, namespace)
            try:
                self._retarget(job, record, now)
            except client.ApiException as exc:
                if exc.status != 422:
                    raise
                return self.rollback(namespace, name, now, f"the API server refused the retarget: {exc.reason}")
            return StepOutcome("Resuming", True, f"pointed {key} at {record['to']}")
        # Resuming: the template already points at the destination.
        return self._write(job, record, "Moved", now, spec={"suspend": False}, clear_handshake=True,
                           message=f"resumed {key} on {record['to']}")

    def rollback(self, namespace: str, name: str, now: float, why: str) -> StepOutcome:
        """Put the Job back where it was and resume it there."""
        job = self.batch.read_namespaced_job(name, namespace)
        record = migration_record(job)
        key = f"Job/{namespace}/{name}"
        if record is None or not ann.in_flight(record):
            return StepOutcome(_phase(record), False, f"{key}: no move to roll back")
        original = record.get("original")
        if original is not None:
            spec = job.spec.template.spec
            ops = _set_or_remove("/spec/template/spec/nodeSelector", spec.node_selector, original.get("nodeSelector"))
            ops += _set_or_remove("/spec/template/spec/affinity", spec.affinity, original.get("affinity"))
            if ops:
                self.batch.patch_namespaced_job(name, namespace, ops)
            job = self.batch.read_namespaced_job(name, namespace)
        record["reason"] = why
        return self._write(job, record, "RolledBack", now, spec={"suspend": False}, clear_handshake=True,
                           message=f"rolled back the move of {key} to {record['to']}: {why}")

    # -- helpers --------------------------------------------------------------------------------------------------

    def _write(self, job: Any, record: dict[str, Any], phase: str, now: float, *, spec: dict[str, Any], message: str,
               clear_handshake: bool = False) -> StepOutcome:
        stamp = rfc3339(now)
        record = {**record, "phase": phase, "steps": [*record.get("steps", []), [phase, stamp]]}
        notes: dict[str, str | None] = {ann.MIGRATION: json.dumps(record), ann.LAST_ACTION: stamp}
        if clear_handshake:
            notes.update({ann.MANAGED_BY: None, ann.CHECKPOINT_REQUESTED: None, ann.CHECKPOINT_COMPLETED: None,
                          ann.LAST_ACTION: None})
        self.batch.patch_namespaced_job(job.metadata.name, job.metadata.namespace, {
            "spec": spec, "metadata": {"annotations": notes}})
        return StepOutcome(phase, True, message)

    def _retarget(self, job: Any, record: dict[str, Any], now: float) -> None:
        """Point the pod template at the destination's nodes, recording what it was, in one write."""
        spec = job.spec.template.spec
        serial = self.api.sanitize_for_serialization
        original = {"nodeSelector": dict(spec.node_selector) if spec.node_selector else None,
                    "affinity": serial(spec.affinity) if spec.affinity else None}
        selector = record.get("selector") or {}
        node_selector = {**(original["nodeSelector"] or {}), **(selector.get("matchLabels") or {})}
        ops: list[dict[str, Any]] = [{"op": "add", "path": "/spec/template/spec/nodeSelector", "value": node_selector}]
        expressions = selector.get("matchExpressions") or []
        if expressions:
            node_affinity = {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]}}
            affinity = {**(original["affinity"] or {}), "nodeAffinity": node_affinity}
            ops.append({"op": "add", "path": "/spec/template/spec/affinity", "value": affinity})
        stamp = rfc3339(now)
        record = {**record, "phase": "Resuming", "original": original,
                  "steps": [*record.get("steps", []), ["Resuming", stamp]]}
        ops.append({"op": "add", "path": _RECORD_PATH, "value": json.dumps(record)})
        self.batch.patch_namespaced_job(job.metadata.name, job.metadata.namespace, ops)


def _phase(record: dict[str, Any] | None) -> str:
    return record.get("phase", "") if record else ""


def _set_or_remove(path: str, current: Any, value: Any) -> list[dict[str, Any]]:
    if value is not None:
        return [{"op": "add", "path": path, "value": value}]
    return [{"op": "remove", "path": path}] if current else []
