"""Moving a checkpointed Job between two sites of kwok nodes on the real control plane (API server,
Job controller, scheduler): every step recorded on the Job, one move at a time, and a rollback
that leaves the Job running where it was."""

from __future__ import annotations

import datetime
import time

import numpy as np
import pytest

from gridshift.actuators.migration import JobMigrator, migration_record
from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import LabelSelector, PowerPolicySpec
from gridshift.devcluster.lab import (
    CheckpointSidecar,
    OperatorProcess,
    delete_site,
    force_delete,
    new_site,
    policy,
    training,
)
from gridshift.operator.inventory import InventoryReader
from gridshift.telemetry.grid import load_eia930
from tests.conftest import SHARED_DATA, Kube, eventually
from tests.integration.conftest import Lab

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


def test_sites_pick_the_nodes_the_api_server_would(kube: Kube) -> None:
    # The migration step lists nodes once and matches each site's selector itself. One node gets a
    # label the others lack, so that NotIn and DoesNotExist meet a missing key.
    reader = InventoryReader(kube.api)
    marked = sorted(reader.node_labels())[0]
    mark = "gridshift.io/selector-test"
    kube.core.patch_node(marked, {"metadata": {"labels": {mark: "x"}}})
    try:
        for selector in (
            {"matchLabels": {"gridshift.io/site": "site-b"}},
            {"matchExpressions": [{"key": "gridshift.io/site", "operator": "In", "values": ["site-a", "site-b"]}]},
            {"matchExpressions": [{"key": mark, "operator": "NotIn", "values": ["x"]}]},
            {"matchExpressions": [{"key": mark, "operator": "Exists"}]},
            {"matchExpressions": [{"key": mark, "operator": "DoesNotExist"}]},
            {"matchLabels": {"gridshift.io/site": "site-a"},
             "matchExpressions": [{"key": "gridshift.io/site", "operator": "NotIn", "values": ["site-b"]}]},
        ):
            sel = LabelSelector.model_validate(selector)
            mine = {n for n, labels in reader.node_labels().items() if sel.matches(labels)}
            assert mine and mine == set(reader.nodes(sel)), selector
    finally:
        kube.core.patch_node(marked, {"metadata": {"labels": {mark: None}}})


def test_the_ladder_leaves_a_job_alone_while_it_moves(kube: Kube, namespace: str) -> None:
    kube.batch.create_namespaced_job(namespace, _migratable("mover"))
    eventually(lambda: _sites_of_running_pods(kube, namespace, "mover") == {"site-a"}, what="the pod on site-a")
    spec = PowerPolicySpec.model_validate({"budget": {"capWatts": 1e6}, "workloads": {"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": namespace}}}})
    reader = InventoryReader(kube.api)
    nodes = reader.nodes(spec.scope.node_selector)
    before = reader.read("policy-a", spec, nodes)
    assert "Job/" + namespace + "/mover" in {w.key for w in before.workloads}
    (job,) = before.movable
    assert job.free and not job.moving and job.checkpoint_bytes == 80e9 and job.power_w == 4 * 700
    JobMigrator(kube.api, "policy-a").start(namespace, "mover", "site-b", SITE_B, time.time(), "surplus")
    during = reader.read("policy-a", spec, nodes)
    assert "Job/" + namespace + "/mover" not in {w.key for w in during.workloads}, "the ladder must not resume it"
    (job,) = during.movable
    assert job.moving and job.managed_by == "policy-a" and not job.free


# -- the whole loop: a PowerPolicy, the operator as a process, renewable supply from Prometheus ------------------------

EIA = SHARED_DATA / "grid" / "eia-930-2022-hourly"


def _solar_watts(hour_utc: str, peak_w: float) -> float:
    """CISO's real solar output at that hour of 2022, scaled so the year's best hour gives ``peak_w``."""
    mix = load_eia930(EIA / "CISO.csv")
    solar = mix.by_fuel["SUN"]
    stamp = datetime.datetime.fromisoformat(hour_utc).replace(tzinfo=datetime.UTC).timestamp()
    return float(solar[int(np.searchsorted(mix.times, stamp))] / solar.max() * peak_w)


def _status(kube: Kube, name: str) -> dict:
    return kube.custom.get_cluster_custom_object("gridshift.io", "v1alpha1", "powerpolicies", name).get("status") or {}


def _job_event_reasons(kube: Kube, namespace: str) -> set[tuple[str, str]]:
    events = kube.core.list_namespaced_event(namespace, field_selector="involvedObject.kind=Job").items
    return {(e.involved_object.name, e.reason) for e in events}


def _decision(kube: Kube, name: str, job: str) -> dict:
    return next((m for m in _status(kube, name).get("migrations") or [] if m["job"].endswith(f"/{job}")), {})


@pytest.mark.skipif(not EIA.exists(), reason=f"{EIA} not found: the shared grid traces are not here")
def test_a_policy_moves_a_job_when_the_window_opens_and_keeps_one_whose_checkpoint_does_not_fit(
        lab: Lab, namespace: str) -> None:
    kube = lab.kube
    a, b = new_site(kube.api, count=1, prefix="mig"), new_site(kube.api, count=1, prefix="mig")
    name = f"pp-{namespace}"
    night, noon = _solar_watts("2022-06-01 10:00", 12_000), _solar_watts("2022-06-01 20:00", 12_000)
    assert night < 500 < 8_000 < noon, (night, noon)
    lab.twin.renewables[b.name] = night
    for job, size in (("small", "10000000000"), ("huge", "2000000000000")):  # 10 GB and 2 TB
        body = training(job, a.name, 1, 4, 500)
        body["metadata"]["labels"][ann.MIGRATABLE] = "true"
        body["metadata"]["annotations"][ann.CHECKPOINT_BYTES] = size
        kube.batch.create_namespaced_job(namespace, body)
    eventually(lambda: all(_sites_of_running_pods(kube, namespace, j) == {a.name} for j in ("small", "huge")), 60,
               what="both jobs running on site A")
    spec = policy(name, a.name, namespace, lab.prometheus_url, cap=1e6, trigger=9e5, dry_run=False)["spec"]
    spec["scope"] = {"nodeSelector": {"matchExpressions": [
        {"key": "gridshift.io/site", "operator": "In", "values": [a.name, b.name]}]}}
    spec["workloads"]["checkpoint"]["deadlineSeconds"] = 120
    # One-minute steps: with no history from yesterday a window open now is trusted for one step, 48 s of
    # which (margin 0.2) a move may take. 10 GB over 10 Gbit/s takes 18 s; 2 TB takes 3600 s.
    spec["migration"] = {"enabled": True, "stepSeconds": 60, "marginFraction": 0.2, "sites": [
        {"name": "site-a", "bandwidthBitsPerSecond": 1e10,
         "nodeSelector": {"matchLabels": {"gridshift.io/site": a.name}}},
        {"name": "site-b", "bandwidthBitsPerSecond": 1e10,
         "nodeSelector": {"matchLabels": {"gridshift.io/site": b.name}},
         "renewableQuery": f'sum(site_renewable_power_watts{{site="{b.name}"}})'}]}
    operator = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}.log").start()
    try:
        kube.custom.create_cluster_custom_object("gridshift.io", "v1alpha1", "powerpolicies",
                                                 {"apiVersion": "gridshift.io/v1alpha1", "kind": "PowerPolicy",
                                                  "metadata": {"name": name}, "spec": spec})
        # Night at site B: no surplus, nobody moves, and the status says so.
        eventually(lambda: "no other site has" in _decision(kube, name, "small").get("reason", ""), 60,
                   interval=1, what=f"a decision for the small job\n{operator.tail()}")
        sites = {s["name"]: s for s in _status(kube, name)["sites"]}
        assert sites["site-b"]["surplusWatts"] < 0 and sites["site-b"]["windowSeconds"] == 0, sites
        assert "grid power only" in sites["site-a"]["message"], sites

        # Noon: site B's window opens. The small job is asked to checkpoint for the move...
        lab.twin.renewables[b.name] = noon
        eventually(lambda: _decision(kube, name, "small").get("phase") == "Checkpointing", 60, interval=1,
                   what=f"the move of the small job to start\n{operator.tail()}")
        huge = _decision(kube, name, "huge")
        assert huge["phase"] == "Stays" and huge["binding"] == "time" and huge["destination"] == "site-b", huge
        assert "binding: time" in huge["reason"] and "transfer 1600 s" in huge["reason"], huge
        # Kopf posts Events from a queue in the background: wait until this one is out before the kill, or
        # the kill may lose it (Events are best-effort; the record on the Job is what the next process reads).
        eventually(lambda: ("small", "MigrationStarted") in _job_event_reasons(kube, namespace), 30, interval=1,
                   what="the MigrationStarted event")
        # ...the operator dies before the checkpoint comes; a new process finishes the move from the record.
        operator.kill()
        assert migration_record(kube.batch.read_namespaced_job("small", namespace))["phase"] == "Checkpointing"
        operator = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}-2.log").start()
        sidecar = CheckpointSidecar(kube.batch, namespace, "small")
        sidecar.start()
        eventually(lambda: _sites_of_running_pods(kube, namespace, "small") == {b.name}, 90, interval=1,
                   what=f"the small job running on site B\n{operator.tail()}")
        sidecar.stop.set()
        eventually(lambda: _decision(kube, name, "small").get("phase") == "Moved", 30, interval=1,
                   what="status: Moved")
        assert _sites_of_running_pods(kube, namespace, "huge") == {a.name}, "the 2 TB job stays"
        assert not kube.batch.read_namespaced_job("huge", namespace).metadata.annotations.get(ann.MIGRATION)
        reasons = _job_event_reasons(kube, namespace)
        assert {("small", "MigrationStarted"), ("small", "Migrated"), ("huge", "MigrationNotFeasible")} <= reasons
        metrics = operator.metrics()
        assert f'gridshift_site_surplus_watts{{policy="{name}",site="site-b"}}' in metrics
        moved = [line for line in metrics.splitlines() if line.startswith("gridshift_migrations_total{")
                 and 'phase="Moved"' in line and f'policy="{name}"' in line]
        assert moved and moved[0].endswith(" 1.0"), moved
    finally:
        operator.stop()
        force_delete(kube.custom, "powerpolicies", name)
        lab.twin.renewables.pop(b.name, None)
        delete_site(kube.api, a)
        delete_site(kube.api, b)
