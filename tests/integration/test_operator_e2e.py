"""The operator end to end: real API server, real Prometheus scraping the telemetry twin, the
operator as its own process. A training surge that would break the cap is shaved within a
period, survives an operator crash, and everything is restored after the surge; dry-run only
reports; Prometheus going away makes the policy hold and say why."""

from __future__ import annotations

import re
import time

import pytest

from gridshift.api.powerpolicy import PowerPolicyStatus
from gridshift.devcluster.lab import (
    CheckpointSidecar,
    OperatorProcess,
    Site,
    force_delete,
    inference,
    policy,
    prom_query,
    prom_range,
    start_prometheus,
    training,
)
from tests.conftest import Kube, eventually
from tests.integration.conftest import Lab

pytestmark = pytest.mark.cluster

GROUP, VERSION = "gridshift.io", "v1alpha1"
GS = "gridshift.io/"


def _power(url: str, site: Site) -> float | None:
    result = prom_query(url, site.power_query)
    return float(result[0]["value"][1]) if result else None


def _pp(kube: Kube, name: str) -> dict:
    """The policy as the API server holds it; its status, whatever the moment, is one the published
    API type (``PowerPolicyStatus``, what clients and the CRD schema are generated from) reads."""
    obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, "powerpolicies", name)
    PowerPolicyStatus.model_validate(obj.get("status") or {})
    return obj


def _condition(obj: dict, type_: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def _running_pods(kube: Kube, namespace: str, label: str) -> int:
    pods = kube.core.list_namespaced_pod(namespace, label_selector=label).items
    return sum(1 for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None)


def _annotations(obj) -> dict:
    return {k: v for k, v in (obj.metadata.annotations or {}).items() if k.startswith(GS) and
            k not in (GS + "priority", GS + "min-replicas")}


def _setup_site_load(kube: Kube, namespace: str, site: Site) -> None:
    """32 GPUs: chat 4 x 300 W (floor 2), embed 4 x 300 W (floor 1), protected pretraining 8 x 600 W,
    16 idle GPUs at 60 W: about 8.2 kW. The fine-tune surge adds 8 x 540 W: about 12.5 kW."""
    kube.apps.create_namespaced_deployment(namespace, inference("chat", site.name, 4, 300, priority=10,
                                                                min_replicas=2))
    kube.apps.create_namespaced_deployment(namespace, inference("embed", site.name, 4, 300, priority=1,
                                                                min_replicas=1))
    kube.batch.create_namespaced_job(namespace, training("pretrain", site.name, 2, 4, 600, protected=True))
    eventually(lambda: _running_pods(kube, namespace, "app in (chat,embed,pretrain)") == 10, 90,
               what="10 workload pods running")


def test_surge_is_shaved_survives_a_crash_and_is_restored(lab: Lab, site: Site, namespace: str) -> None:
    kube = lab.kube
    _setup_site_load(kube, namespace, site)
    name = f"pp-{namespace}"
    operator = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}.log").start()
    sidecar = CheckpointSidecar(kube.batch, namespace, "finetune")
    sidecar.start()
    try:
        kube.custom.create_cluster_custom_object(GROUP, VERSION, "powerpolicies", policy(
            name, site.name, namespace, lab.prometheus_url, cap=11_000, trigger=10_000, dry_run=False))
        # The student needs two minutes of history before it forecasts, then its matured forecasts are
        # scored against persistence: it is planned on only while it beats persistence (planner.skill).
        eventually(lambda: _condition(_pp(kube, name), "ForecastHealthy").get("reason") in (
            "Predictive", "BelowPersistence"), 300, interval=2, what=f"the forecast judged\n{operator.tail()}")
        base = _power(lab.prometheus_url, site)
        assert base is not None and 7_500 < base < 8_800, base
        # Once forecasts mature, status says how often the upper bound held (the operator tracks it online).
        eventually(lambda: (lambda c: c is not None and 0.0 <= c <= 1.0)(
            (_pp(kube, name).get("status") or {}).get("forecastCoverage")), 60,
            interval=2, what=f"status.forecastCoverage\n{operator.tail()}")
        # ... and that it adapts the median to this site from every second whose horizon matured.
        eventually(lambda: "median adapted to this site" in _condition(_pp(kube, name), "ForecastHealthy").get(
            "message", ""), 60, interval=2, what=f"ForecastHealthy says the median is adapted\n{operator.tail()}")

        surge_at = time.time()
        kube.batch.create_namespaced_job(namespace, training("finetune", site.name, 2, 4, 600))
        eventually(lambda: kube.batch.read_namespaced_job("finetune", namespace).spec.suspend, 90,
                   what=f"finetune checkpointed and suspended\n{operator.tail()}")
        eventually(lambda: (_power(lab.prometheus_url, site) or 1e9) < 11_000, 30, what="power back under the cap")

        # It acted within one period of the crossing (plus one scrape and the timestamps' 1 s resolution).
        series = prom_range(lab.prometheus_url, site.power_query, surge_at - 2, time.time())
        crossing = next((t for t, v in series if v > 11_000), None)
        records = _pp(kube, name)["status"]["recentActions"]
        first = min(_epoch(r["time"]) for r in records if r["expectedWatts"] > 0 and _epoch(r["time"]) >= surge_at - 1)
        if crossing is not None:
            assert first <= crossing + 2 + 2, (first, crossing, series)
        assert sidecar.answered >= 1, "the job was suspended without being asked to checkpoint first"

        chat = kube.apps.read_namespaced_deployment("chat", namespace)
        embed = kube.apps.read_namespaced_deployment("embed", namespace)
        pretrain = kube.batch.read_namespaced_job("pretrain", namespace)
        assert chat.spec.replicas >= 2 and embed.spec.replicas >= 1, "a floor was broken"
        assert not pretrain.spec.suspend and GS + "managed-by" not in (pretrain.metadata.annotations or {})
        assert embed.spec.replicas < 4 or chat.spec.replicas < 4, "lowest priority inference is scaled first"
        assert embed.metadata.annotations.get(GS + "original-replicas") in (None, "4")

        # Crash mid-peak; the new process finds what was changed and does not apply it again.
        before = {n: _annotations(kube.apps.read_namespaced_deployment(n, namespace)) for n in ("chat", "embed")}
        replicas = {n: kube.apps.read_namespaced_deployment(n, namespace).spec.replicas for n in ("chat", "embed")}
        operator.kill()
        operator = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}-2.log").start()
        time.sleep(8)  # four periods
        for n in ("chat", "embed"):
            dep = kube.apps.read_namespaced_deployment(n, namespace)
            assert dep.spec.replicas == replicas[n], f"{n} changed after the restart without a new peak"
            assert dep.metadata.annotations.get(GS + "original-replicas") == before[n].get(GS + "original-replicas")
        assert kube.batch.read_namespaced_job("finetune", namespace).spec.suspend

        # The surge ends (pretraining finishes): everything comes back, and nothing stays annotated.
        kube.batch.delete_namespaced_job("pretrain", namespace, propagation_policy="Background")

        def restored() -> bool:
            jobs = kube.batch.read_namespaced_job("finetune", namespace)
            deps = [kube.apps.read_namespaced_deployment(n, namespace) for n in ("chat", "embed")]
            return (not jobs.spec.suspend and all(d.spec.replicas == 4 for d in deps)
                    and not any(_annotations(o) for o in [jobs, *deps]))

        eventually(restored, 120, what=f"restore to the recorded state\n{operator.tail()}")
        eventually(lambda: _pp(kube, name)["status"]["phase"] == "Watching", 30, what="phase Watching")
        assert (_power(lab.prometheus_url, site) or 0) < 11_000
        events = kube.core.list_event_for_all_namespaces(field_selector=f"involvedObject.name={name}").items
        reasons = {e.reason for e in events}
        assert {"ScaleDown", "CheckpointRequested", "Suspend", "Resume", "ScaleUp"} <= reasons, reasons
        metrics = operator.metrics()
        assert f'gridshift_budget_watts{{policy="{name}"}} 11000.0' in metrics
        assert "gridshift_loop_duration_seconds_count" in metrics
    finally:
        sidecar.stop.set()
        operator.stop()
        print(operator.tail(20000))
        _delete_policy(kube, name)


def test_dry_run_reports_and_writes_nothing(lab: Lab, site: Site, namespace: str) -> None:
    kube = lab.kube
    _setup_site_load(kube, namespace, site)
    kube.batch.create_namespaced_job(namespace, training("finetune", site.name, 2, 4, 600))
    name = f"pp-{namespace}"
    operator = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}.log").start()
    try:
        kube.custom.create_cluster_custom_object(GROUP, VERSION, "powerpolicies", policy(
            name, site.name, namespace, lab.prometheus_url, cap=11_000, trigger=10_000, dry_run=True))

        def reported() -> list:
            records = (_pp(kube, name).get("status") or {}).get("recentActions", [])
            return [r for r in records if r["dryRun"] and r["verb"] in ("scaleDown", "checkpoint")]

        eventually(reported, 60, what=f"dry-run actions in status\n{operator.tail()}")
        time.sleep(4)  # two more periods: still nothing written
        status = _pp(kube, name)["status"]
        assert status["phase"] == "Acting" and _condition(_pp(kube, name), "Acting")["status"] == "True"
        assert "dry-run" in _condition(_pp(kube, name), "Acting")["message"]
        for n in ("chat", "embed"):
            dep = kube.apps.read_namespaced_deployment(n, namespace)
            assert dep.spec.replicas == 4 and not _annotations(dep), f"dry-run changed {n}"
        job = kube.batch.read_namespaced_job("finetune", namespace)
        assert not job.spec.suspend and not _annotations(job)
        assert all(r["dryRun"] for r in status["recentActions"])
        events = kube.core.list_event_for_all_namespaces(field_selector=f"involvedObject.name={name}").items
        assert any(e.reason == "DryRun" for e in events)
        metrics = operator.metrics()
        prefix = f'gridshift_would_shave_watts{{policy="{name}"'
        would = [line for line in metrics.splitlines() if line.startswith(prefix)]
        assert would and float(would[0].split()[-1]) > 0, would
        assert 'dry_run="true"' in metrics
    finally:
        operator.stop()
        print(operator.tail(20000))
        _delete_policy(kube, name)


def test_a_paused_policy_reports_its_plan_changes_nothing_and_acts_once_resumed(
        lab: Lab, site: Site, namespace: str) -> None:
    kube = lab.kube
    _setup_site_load(kube, namespace, site)
    kube.batch.create_namespaced_job(namespace, training("finetune", site.name, 2, 4, 600))
    name = f"pp-{namespace}"
    operator = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}.log").start()
    try:
        body = policy(name, site.name, namespace, lab.prometheus_url, cap=11_000, trigger=10_000, dry_run=False)
        body["metadata"]["annotations"] = {"gridshift.io/paused": "true"}
        kube.custom.create_cluster_custom_object(GROUP, VERSION, "powerpolicies", body)
        eventually(lambda: "would scaleDown" in _condition(_pp(kube, name), "Acting").get("message", "")
                   or "would checkpoint" in _condition(_pp(kube, name), "Acting").get("message", ""),
                   60, what=f"the paused policy to report what it would do\n{operator.tail()}")
        time.sleep(4)  # two more periods over the cap: still nothing written
        got = _pp(kube, name)
        assert got["status"]["phase"] == "Paused" and _condition(got, "Acting")["reason"] == "Paused"
        for n in ("chat", "embed"):
            dep = kube.apps.read_namespaced_deployment(n, namespace)
            assert dep.spec.replicas == 4 and not _annotations(dep), f"a paused policy changed {n}"
        assert not _annotations(kube.batch.read_namespaced_job("finetune", namespace))

        kube.custom.patch_cluster_custom_object(GROUP, VERSION, "powerpolicies", name, {
            "metadata": {"annotations": {"gridshift.io/paused": None}}})

        def shed() -> bool:
            touched = [kube.apps.read_namespaced_deployment(n, namespace) for n in ("chat", "embed")]
            return any(_annotations(o) for o in [*touched, kube.batch.read_namespaced_job("finetune", namespace)])
        eventually(shed, 60, what=f"the resumed policy to act\n{operator.tail()}")
        # Kopf posts Events from a background queue: they follow the period that decided them.
        eventually(lambda: {"Paused", "Resumed"} <= {e.reason for e in kube.core.list_event_for_all_namespaces(
            field_selector=f"involvedObject.name={name}").items}, 30, what="the Paused and Resumed Events")
    finally:
        operator.stop()
        _delete_policy(kube, name)


def test_prometheus_down_holds_and_recovers(lab: Lab, site: Site, namespace: str) -> None:
    kube = lab.kube
    _setup_site_load(kube, namespace, site)
    prom = start_prometheus(lab.tmp / f"prom-{namespace}", lab.twin_port)
    name = f"pp-{namespace}"
    operator = OperatorProcess(kube.kubeconfig, prom.url, lab.tmp / f"{name}.log").start()
    try:
        time.sleep(3)  # a few scrapes
        kube.custom.create_cluster_custom_object(GROUP, VERSION, "powerpolicies", policy(
            name, site.name, namespace, prom.url, cap=11_000, trigger=10_000, dry_run=False))
        eventually(lambda: _condition(_pp(kube, name), "Degraded").get("status") == "False", 60,
                   what=f"policy reconciled\n{operator.tail()}")

        prom.stop()
        eventually(lambda: _condition(_pp(kube, name), "Degraded").get("status") == "True", 30,
                   what="Degraded after Prometheus went away")
        obj = _pp(kube, name)
        assert obj["status"]["phase"] == "Degraded"
        assert "unreachable" in _condition(obj, "Degraded")["message"]
        # A surge while blind: the policy holds; it never reads the missing data as 0 W and acts on nothing.
        kube.batch.create_namespaced_job(namespace, training("finetune", site.name, 2, 4, 600))
        time.sleep(6)
        for n in ("chat", "embed"):
            assert kube.apps.read_namespaced_deployment(n, namespace).spec.replicas == 4
        assert not _annotations(kube.batch.read_namespaced_job("finetune", namespace))
        events = kube.core.list_event_for_all_namespaces(field_selector=f"involvedObject.name={name}").items
        assert any(e.reason == "TelemetryError" and e.type == "Warning" for e in events)

        prom.start()
        eventually(lambda: _condition(_pp(kube, name), "Degraded").get("status") == "False", 60,
                   what=f"recovery when Prometheus returns\n{operator.tail()}")
        eventually(lambda: kube.apps.read_namespaced_deployment("embed", namespace).spec.replicas < 4, 60,
                   what="actions resume once telemetry is trusted")

        # Deleting the policy gives back what it changed, then lets the object go.
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "powerpolicies", name)

        def released() -> bool:
            deps = [kube.apps.read_namespaced_deployment(n, namespace) for n in ("chat", "embed")]
            job = kube.batch.read_namespaced_job("finetune", namespace)
            return all(d.spec.replicas == 4 and not _annotations(d) for d in deps) and not job.spec.suspend \
                and not _annotations(job)

        eventually(released, 60, what=f"release on delete\n{operator.tail()}")
        eventually(lambda: name not in {p["metadata"]["name"] for p in kube.custom.list_cluster_custom_object(
            GROUP, VERSION, "powerpolicies")["items"]}, 30, what="the policy gone after its finalizer ran")
    finally:
        operator.stop()
        print(operator.tail(20000))
        prom.stop()
        _delete_policy(kube, name)


def _epoch(text: str) -> float:
    from gridshift.api.times import parse_rfc3339

    value = parse_rfc3339(text)
    assert value is not None
    return value


def _delete_policy(kube: Kube, name: str) -> None:
    """Delete the policy; with no operator left to release it, drop the finalizer too."""
    force_delete(kube.custom, "powerpolicies", name)


def test_two_peered_replicas_never_both_act(lab: Lab, site: Site, namespace: str) -> None:
    """Two operator processes in one ClusterKopfPeering: the lower priority one stands by, the other
    one runs the policy's control loop, and when that one is killed the standby takes over."""
    kube = lab.kube
    name = f"pp-{namespace}"
    low = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}-low.log", peering_priority=10)
    high = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}-high.log", peering_priority=20)
    low.start()
    high.start()
    try:
        kube.custom.create_cluster_custom_object(GROUP, VERSION, "powerpolicies", policy(
            name, site.name, namespace, lab.prometheus_url, cap=11_000, trigger=10_000, dry_run=True))
        eventually(lambda: "Pausing operations in favour of" in low.tail(100_000), 60,
                   what=f"the low-priority replica to stand by\n{low.tail()}")
        eventually(lambda: (_pp(kube, name).get("status") or {}).get("observedWatts") is not None, 60,
                   what="the policy reconciled by the active replica")
        time.sleep(5)
        assert f'gridshift_loop_duration_seconds_count{{policy="{name}"}}' in high.metrics()
        assert f'policy="{name}"' not in low.metrics(), "the standby replica ran a control period"
        # What GridshiftNoActiveReplica reads: the active replica controls the policy, the standby none,
        # and both count the policies that exist.
        assert re.search(r"^gridshift_policies_controlled [1-9]", high.metrics(), re.M)
        assert re.search(r"^gridshift_policies_controlled 0\.0$", low.metrics(), re.M)
        eventually(lambda: re.search(r"^gridshift_policies [1-9]", low.metrics(), re.M), 45, interval=1.0,
                   what="the standby to count the policies")
        # The active replica dies: the standby takes the policy over once its keep-alive lapses
        # (--peering-lifetime, 8 s; bench/failover.py times it).
        high.kill()
        eventually(lambda: f'gridshift_loop_duration_seconds_count{{policy="{name}"}}' in low.metrics(), 30,
                   interval=0.5, what=f"the standby to take over\n{low.tail()}")
        eventually(lambda: f'gridshift_observed_watts{{policy="{name}"}}' in low.metrics(), 30, interval=0.5,
                   what="the new active replica's gauges")
        # A higher-priority replica joins: the one that stands by again stops exporting the policy's
        # gauges (two replicas exporting one policy would break the alerts' matching).
        high = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"{name}-high2.log",
                               peering_priority=30).start()
        eventually(lambda: f'gridshift_observed_watts{{policy="{name}"}}' not in low.metrics(), 60, interval=0.5,
                   what=f"the paused replica to drop the policy's gauges\n{low.tail()}")
    finally:
        low.stop()
        high.stop()
        print(low.tail(8000), high.tail(8000))
        _delete_policy(kube, name)
