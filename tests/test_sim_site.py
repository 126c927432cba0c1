"""The simulated cluster: jobs replay their traces on whole nodes, actions take effect with the
delays of a real cluster, and what they cost the workloads is counted."""

from __future__ import annotations

import numpy as np
import pytest

from gridshift.ess.physics import BatteryPhysics
from gridshift.planner import Action
from gridshift.sim.peak import Battery, Setup, simulate
from gridshift.sim.site import Cluster, JobSpec, ServiceSpec, SiteModel, TraceBank

IDLE = 1_000.0
# One node trace: 60 s at 3 kW then 60 s at 4.5 kW, repeating.
TRACE = np.concatenate([np.full(60, 3_000.0), np.full(60, 4_500.0)])


def _site(seconds: int = 600, jobs: tuple[JobSpec, ...] = (), services: tuple[ServiceSpec, ...] = (),
          nodes: int = 4) -> SiteModel:
    return SiteModel(seconds=seconds, nodes=nodes, gpus_per_node=8, idle_node_w=IDLE, jobs=jobs, services=services,
                     bank=TraceBank.of([TRACE]))


def _job(name: str = "a", nodes: int = 2, **kw) -> JobSpec:
    return JobSpec(name=name, arrival_s=kw.pop("arrival_s", 0), nodes=nodes, work_s=kw.pop("work_s", 10_000), trace=0,
                   **kw)


def _act(verb: str, target: str, replicas: int | None = None) -> Action:
    return Action("suspend" if verb in ("checkpoint", "suspend", "resume") else "scaleDown", verb, target, 0.0, "test",
                  replicas=replicas)


def test_a_running_job_draws_its_trace_on_every_node_and_free_nodes_idle() -> None:
    cluster = Cluster(_site(jobs=(_job(nodes=3),)))
    load = cluster.advance(120)
    assert np.allclose(load, 3 * TRACE + 1 * IDLE)


def test_queued_jobs_start_first_fit_when_nodes_free_up() -> None:
    short = _job("short", nodes=3, work_s=30)
    big = _job("big", nodes=2, arrival_s=5)
    small = _job("small", nodes=1, arrival_s=6)
    cluster = Cluster(_site(jobs=(short, big, small)))  # the scheduler runs at each step's start
    cluster.advance(5)
    assert np.allclose(cluster.advance(1), 3 * 3_000 + IDLE), "the big job waits: one node free"
    assert np.allclose(cluster.advance(4), 3 * 3_000 + 3_000), "the small one fits beside the first and starts"
    cluster.advance(30)                      # the short job finishes at 30 s
    assert np.allclose(cluster.advance(10), (2 + 1) * 3_000 + IDLE), "the big job now runs"
    assert cluster.acct.jobs_completed == 1


def test_checkpoint_then_suspend_idles_the_nodes_and_keeps_the_checkpointed_work() -> None:
    job = _job(nodes=2, checkpoint_s=20, restore_s=30, checkpoint_interval_s=10_000)
    cluster = Cluster(_site(jobs=(job,)))
    cluster.advance(100)
    cluster.apply(_act("checkpoint", "Job/batch/a"))
    cluster.advance(10)
    assert not cluster.workloads()[0].checkpoint_completed, "a checkpoint takes checkpoint_s"
    cluster.advance(15)
    w = cluster.workloads()[0]
    assert w.checkpoint_completed and w.managed_by == "sim"
    cluster.apply(_act("suspend", "Job/batch/a"))
    assert np.allclose(cluster.advance(60), 4 * IDLE), "suspended: every node idles"
    assert cluster.acct.lost_gpu_s == pytest.approx(5 * 2 * 8), "the 5 s after the checkpoint are redone"
    cluster.apply(_act("resume", "Job/batch/a"))
    reload = cluster.advance(40)
    assert np.allclose(reload[:30], 4 * IDLE) and reload[30:].min() > 4 * IDLE, "runs again after restore_s"
    # 60 s suspended and 30 s of reload, on 16 GPUs, plus the lost work.
    assert cluster.acct.job_delay_gpu_h == pytest.approx((90 * 16 + 5 * 16) / 3600)


def test_a_suspension_without_a_checkpoint_loses_the_work_since_the_jobs_own() -> None:
    job = _job(nodes=1, checkpoint_interval_s=100, done_s=0)
    cluster = Cluster(_site(jobs=(job,)))
    cluster.advance(250)
    cluster.apply(_act("suspend", "Job/batch/a"))
    assert cluster.acct.lost_gpu_s == pytest.approx(50 * 8), "back to its periodic checkpoint at 200 s"


def test_scale_down_drains_before_the_power_falls_and_scale_up_waits_for_startup() -> None:
    svc = ServiceSpec("chat", replicas=10, watts_per_replica=2_000, utilisation=np.ones(600), floor=2,
                      idle_watts_per_replica=200, drain_s=30, startup_s=60)
    cluster = Cluster(_site(services=(svc,), nodes=0))
    assert np.allclose(cluster.advance(10), 10 * 2_000)
    cluster.apply(_act("scaleDown", "Deployment/inference/chat", replicas=4))
    assert cluster.workloads()[0].replicas == 4 and cluster.workloads()[0].original_replicas == 10
    drain = cluster.advance(40)
    assert np.allclose(drain[:30], 20_000) and np.allclose(drain[30:], 4 * 2_000 + 6 * 200)
    cluster.apply(_act("scaleUp", "Deployment/inference/chat", replicas=10))
    start = cluster.advance(70)
    assert np.allclose(start[:60], 4 * 2_000 + 6 * 200) and np.allclose(start[60:], 20_000)
    assert cluster.workloads()[0].managed_by is None, "restored to its size: released"
    assert cluster.acct.shed_replica_s == pytest.approx(6 * (10 + 60))


def test_a_fork_sees_exactly_the_future_the_cluster_then_lives() -> None:
    jobs = tuple(_job(f"j{k}", nodes=1, arrival_s=17 * k, work_s=90, offset=13 * k) for k in range(8))
    cluster = Cluster(_site(jobs=jobs, nodes=3))
    cluster.advance(40)
    cluster.apply(_act("checkpoint", "Job/batch/j0"))
    ahead = cluster.fork().advance(200)
    assert np.array_equal(ahead, cluster.advance(200))


def _busy_site(seed: int) -> SiteModel:
    rng = np.random.default_rng(seed)
    jobs = tuple(_job(f"j{k}", nodes=int(rng.integers(1, 3)), arrival_s=int(rng.integers(0, 1500)),
                      work_s=int(rng.integers(300, 1500)), offset=int(rng.integers(120)), checkpoint_s=20,
                      restore_s=30, priority=int(rng.integers(0, 5))) for k in range(20))
    util = np.clip(0.7 + 0.3 * np.sin(np.arange(1800) / 200.0), 0, 1)
    svc = ServiceSpec("chat", replicas=6, watts_per_replica=2_000, utilisation=util, floor=2, drain_s=10,
                      startup_s=30)
    return _site(seconds=1800, jobs=jobs, services=(svc,), nodes=6)


def test_workload_runs_are_deterministic_and_the_oracle_holds_the_cap_when_the_ladder_can() -> None:
    site = _busy_site(4)
    load = simulate(site, Setup(cap_w=1e9, trigger_w=1e9 - 1, battery=None), "none").load_w
    cap = 0.85 * float(load.max())
    setup = Setup(cap_w=cap, trigger_w=0.95 * cap, battery=Battery(BatteryPhysics(3_000, 5_000, 6_000)),
                  ladder=("battery", "scaleDown", "suspend"))
    a = simulate(site, setup, "oracle")
    b = simulate(_busy_site(4), setup, "oracle")
    assert np.array_equal(a.grid_w, b.grid_w) and a.summary() == b.summary(), "same seed, same run"
    none = simulate(site, setup, "none")
    assert none.energy_above_cap_kwh > 0
    assert a.energy_above_cap_kwh < 0.05 * none.energy_above_cap_kwh, "the ladder has room: the oracle holds the cap"
    reactive = simulate(site, setup, "reactive")
    assert a.energy_above_cap_kwh <= reactive.energy_above_cap_kwh + 1e-4, "the oracle is not beaten"
    assert a.jobs_completed <= none.jobs_completed and a.job_delay_gpu_h >= 0


def test_without_a_battery_the_workload_rungs_alone_shave() -> None:
    site = _busy_site(7)
    load = simulate(site, Setup(cap_w=1e9, trigger_w=1e9 - 1, battery=None), "none").load_w
    cap = 0.9 * float(load.max())
    setup = Setup(cap_w=cap, trigger_w=0.95 * cap, battery=None, ladder=("battery", "scaleDown", "suspend"))
    none = simulate(site, setup, "none")
    oracle = simulate(site, setup, "oracle")
    assert oracle.energy_above_cap_kwh < 0.5 * none.energy_above_cap_kwh
    assert oracle.inference_shed_replica_h > 0 or oracle.suspensions > 0
    assert oracle.battery_discharged_kwh == 0 and oracle.battery_w.sum() == 0
