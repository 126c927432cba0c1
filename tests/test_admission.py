"""Admission before a surge: gated jobs start, highest priority first, only into the headroom the
plan leaves, and never wait longer than the limit (planner.admission, and the simulator's gate)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gridshift.planner.admission import Gated, admission_headroom, admit
from gridshift.sim.site import Cluster, JobSpec, SiteModel, TraceBank


def test_jobs_start_by_priority_into_the_headroom_and_the_first_that_does_not_fit_stops_the_rest() -> None:
    gated = [Gated("Job/a/small", 2_000, priority=0, waited_s=300), Gated("Job/a/big", 8_000, priority=5),
             Gated("Job/a/mid", 4_000, priority=5, waited_s=60)]
    some = admit(gated, headroom_w=10_000, max_wait_s=900)
    assert some.admitted == ("Job/a/mid",), "priority 5 first, the longer wait first; the big one does not fit"
    assert some.headroom_w == pytest.approx(6_000)
    assert "Job/a/small" not in some.admitted, "a small low-priority job does not jump the big one"
    assert admit(gated, headroom_w=14_000, max_wait_s=900).admitted == ("Job/a/mid", "Job/a/big", "Job/a/small")
    assert admit(gated, headroom_w=-5_000, max_wait_s=900).admitted == ()


def test_a_job_that_waited_the_limit_starts_whatever_the_headroom_and_uses_it_up() -> None:
    gated = [Gated("Job/a/old", 6_000, waited_s=900), Gated("Job/a/new", 3_000, priority=9)]
    decided = admit(gated, headroom_w=5_000, max_wait_s=900)
    assert decided.admitted == ("Job/a/old",) and decided.overdue == ("Job/a/old",)
    assert decided.headroom_w == pytest.approx(-1_000), "the overdue job's power leaves no room for the other"


def test_a_backlog_past_its_wait_limit_starts_one_job_a_period_without_room() -> None:
    """Three jobs past the limit and no headroom: the one that waited longest starts, the others (and
    a fresh high-priority job) wait for the next period; with room, every late job that fits starts."""
    gated = [Gated("Job/a/late1", 4_000, waited_s=950), Gated("Job/a/late2", 4_000, waited_s=1_200),
             Gated("Job/a/late3", 4_000, waited_s=900), Gated("Job/a/fresh", 1_000, priority=9)]
    none = admit(gated, headroom_w=0.0, max_wait_s=900)
    assert none.admitted == ("Job/a/late2",) and none.overdue == ("Job/a/late2",)
    some = admit(gated, headroom_w=9_000, max_wait_s=900)
    assert some.admitted == ("Job/a/late2", "Job/a/late1"), "the third late job does not fit, so nothing else starts"
    assert admit(gated, headroom_w=13_000, max_wait_s=900).admitted == (
        "Job/a/late2", "Job/a/late1", "Job/a/late3", "Job/a/fresh")


def test_headroom_is_the_restore_threshold_less_the_peak_and_gridshifts_own_load() -> None:
    assert admission_headroom(100_000, 0.05, 80_000, 5_000) == pytest.approx(10_000)
    assert admission_headroom(100_000, 0.05, 80_000, -1.0) == pytest.approx(15_000)


def _site(jobs: tuple[JobSpec, ...], nodes: int = 4) -> SiteModel:
    bank = TraceBank.of([np.full(600, 6_000.0)])
    return SiteModel(seconds=3_600, nodes=nodes, gpus_per_node=8, idle_node_w=1_000.0, jobs=jobs, bank=bank)


def test_the_gate_holds_a_job_until_admitted_and_counts_the_wait_as_job_delay() -> None:
    job = JobSpec("j", arrival_s=0, nodes=2, work_s=600, trace=0)
    cluster = Cluster(_site((job,)))
    cluster.gating = True
    held = cluster.advance(60)
    assert held.max() == pytest.approx(4 * 1_000.0), "held at the door: its nodes stay idle"
    [door] = cluster.gated()
    assert door.key == "Job/batch/j" and door.watts == pytest.approx(2 * 5_000.0) and door.waited_s == 60
    assert cluster.acct.job_delay_gpu_h == pytest.approx(2 * 8 * 60 / 3600), "16 GPUs held a minute"
    cluster.admit([door.key])
    running = cluster.advance(60)
    assert running.min() == pytest.approx(4 * 1_000.0 + 2 * 5_000.0)
    assert cluster.gated() == []
    protected = Cluster(_site((JobSpec("p", arrival_s=0, nodes=2, work_s=600, trace=0, protected=True),)))
    protected.gating = True
    assert protected.advance(10).min() > 4 * 1_000.0, "a protected job is never gated"


def test_in_the_simulator_a_job_waits_for_the_dip_instead_of_starting_over_the_cap() -> None:
    from gridshift.sim.peak import Setup, simulate

    background = np.where(np.arange(3_600) < 600, 12_000.0, 4_000.0)
    job = JobSpec("train", arrival_s=30, nodes=2, work_s=1_200, trace=0)
    site = SiteModel(seconds=3_600, nodes=2, gpus_per_node=8, idle_node_w=0.0, jobs=(job,),
                     bank=TraceBank.of([np.full(600, 5_000.0)]), background_w=background)
    setup = Setup(cap_w=20_000, trigger_w=19_000, battery=None, ladder=("battery",))
    plain = simulate(site, setup, "persistence")
    gated = simulate(site, replace(setup, admission=True), "persistence")
    assert plain.energy_above_cap_kwh > 0.3, "started at once: 22 kW on a 20 kW cap until the dip"
    assert gated.energy_above_cap_kwh == 0.0
    assert gated.jobs_completed == 1, "it still runs, after the dip"
    assert gated.admission_wait_gpu_h == pytest.approx(16 * 570 / 3600, rel=0.02)
    assert gated.job_delay_gpu_h >= gated.admission_wait_gpu_h
    hurried = simulate(site, replace(setup, admission=True, max_wait_s=120.0), "persistence")
    assert 0 < hurried.admission_wait_gpu_h <= 16 * 125 / 3600, "the wait limit starts it anyway"
