"""Moving a checkpointed Job between two sites of kwok nodes on the real control plane (API server,
Job controller, scheduler): every step recorded on the Job, one move at a time, and a rollback
that leaves the Job running where it was."""

from __future__ import annotations

import time

import pytest

from gridshift.actuators.migration import JobMigrator, migration_record
from gridshift.api import annotations as ann
from gridshift.devcluster.lab import training
from tests.conftest import Kube, eventually

pytestmark = pytest.mark.cluster
SITE_B = {"matchLabels": {"gridshift.io/site": "site-b"}}


def _migratable(name: str, checkpoint_bytes: str | None = "80000000000") -> dict:
    job = training(name, "site-a", 1, 4, 600)
    job["metadata"]["labels"][ann.MIGRATABLE] = "true"
    if checkpoint_bytes is not None:
        job["metadata"]["annotations"][ann.CHECKPOINT_BYTES] = checkpoint_bytes
    return job


def _sites_of_running_pods(kube: Kube, namespace: str, name: str) -> set[str]:
    pods = kube.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    nodes = {p.spec.node_name for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None}
    return {kube.core.read_node(n).metadata.labels["gridshift.io/site"] for n in nodes if n}


def test_a_checkpointed_job_moves_to_the_other_site_step_by_step(kube: Kube, namespace: str) -> None:
    kube.batch.create_namespaced_job(namespace, _migratable("train"))
    eventually(lambda: _sites_of_running_pods(kube, namespace, "train") == {"site-a"}, what="the pod on site-a")
    mover = JobMigrator(kube.api, "policy-a")
    started = mover.start(namespace, "train", "site-b", SITE_B, time.time(), "site-b has surplus")
    assert (started.phase, started.changed) == ("Checkpointing", True)
    again = mover.start(namespace, "train", "site-b", SITE_B, time.time(), "again")
    assert not again.changed and "already moving to site-b" in again.message, "never two moves of one job"
    waiting = mover.advance(namespace, "train", time.time(), deadline_s=300)
    assert not waiting.changed and "waiting for its checkpoint" in waiting.message
    assert _sites_of_running_pods(kube, namespace, "train") == {"site-a"}, "nothing stops before the checkpoint"

    kube.batch.patch_namespaced_job("train", namespace, {"metadata": {"annotations": {ann.CHECKPOINT_COMPLETED: "s3://ckpt/1"}}})

    def moved() -> bool:
        return mover.advance(namespace, "train", time.time(), deadline_s=300).phase == "Moved"

    eventually(moved, timeout=90, what="the move to finish")
    job = kube.batch.read_namespaced_job("train", namespace)
    record = migration_record(job)
    assert record is not None and [s[0] for s in record["steps"]] == ["Checkpointing", "Suspending", "Resuming",
                                                                      "Moved"]
    assert record["original"]["nodeSelector"] == {"gridshift.io/site": "site-a"}
    assert job.spec.template.spec.node_selector == {"gridshift.io/site": "site-b"} and not job.spec.suspend
    assert ann.MANAGED_BY not in (job.metadata.annotations or {}), "released once moved"
    eventually(lambda: _sites_of_running_pods(kube, namespace, "train") == {"site-b"}, timeout=60,
               what="the pod running on site-b")


def test_a_move_without_a_checkpoint_rolls_back_and_undeclared_jobs_never_start(kube: Kube, namespace: str) -> None:
    kube.batch.create_namespaced_job(namespace, _migratable("quiet"))
    kube.batch.create_namespaced_job(namespace, _migratable("unsized", checkpoint_bytes=None))
    mover = JobMigrator(kube.api, "policy-a")
    refused = mover.start(namespace, "unsized", "site-b", SITE_B, time.time(), "surplus")
    assert not refused.changed and "declares no gridshift.io/checkpoint-bytes" in refused.message
    assert migration_record(kube.batch.read_namespaced_job("unsized", namespace)) is None

    assert mover.start(namespace, "quiet", "site-b", SITE_B, time.time() - 120, "surplus").changed
    rolled = mover.advance(namespace, "quiet", time.time(), deadline_s=60)
    assert rolled.phase == "RolledBack" and "no checkpoint within 60 s" in rolled.message
    job = kube.batch.read_namespaced_job("quiet", namespace)
    record = migration_record(job)
    assert record is not None and record["phase"] == "RolledBack" and "no checkpoint" in record["reason"]
    assert not job.spec.suspend and job.spec.template.spec.node_selector == {"gridshift.io/site": "site-a"}
    assert ann.CHECKPOINT_REQUESTED not in (job.metadata.annotations or {})
    # Rolled back, it may be moved again later.
    assert mover.start(namespace, "quiet", "site-b", SITE_B, time.time(), "surplus again").changed
