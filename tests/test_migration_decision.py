"""Where a job moves to follow renewable surplus, and the reason it stays when it does not."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.planner.migration import Candidate, SiteNow, choose_destination, forecast_window_s, plan_moves, surplus

GB = 1e9


def _sites(window_b_s: float) -> list[SiteNow]:
    return [SiteNow("site-a", -50_000, 0, 10e9), SiteNow("site-b", 80_000, window_b_s, 10e9),
            SiteNow("site-c", 20_000, 3 * 3600, 10e9)]


def test_the_greenest_site_that_covers_the_job_is_chosen_when_the_move_fits_its_window() -> None:
    d = choose_destination(16_000, 80 * GB, "site-a", _sites(3 * 3600), margin=0.2)
    assert (d.site, d.feasible) == ("site-b", True)
    assert d.verdict is not None and d.verdict.move_s < d.verdict.time_budget_s
    assert "move to site-b" in d.reason


def test_a_window_too_short_for_the_checkpoint_keeps_the_job_and_names_time() -> None:
    d = choose_destination(16_000, 800 * GB, "site-a", _sites(10 * 60), margin=0.2)
    assert (d.site, d.feasible) == ("site-b", False)
    assert d.verdict is not None and d.verdict.binding == "time"
    assert d.reason.startswith("stays") and "binding: time" in d.reason and "transfer 640 s" in d.reason


def test_no_declared_size_or_no_covering_surplus_means_no_move() -> None:
    assert choose_destination(16_000, None, "site-a", _sites(3600), 0.2).site is None
    assert "checkpoint-bytes" in choose_destination(16_000, None, "site-a", _sites(3600), 0.2).reason
    none = choose_destination(100_000, 10 * GB, "site-a", _sites(3600), 0.2)
    assert none.site is None and not none.feasible and "100.0 kW" in none.reason
    home = choose_destination(16_000, 10 * GB, "site-b", _sites(3600), 0.2)
    assert home.site == "site-c", "the job's own site is never a destination"


H = 3600.0


def test_the_window_is_one_step_without_history_and_as_long_as_yesterday_with_it() -> None:
    day = [0.0] * 8 + [10_000.0] * 6 + [0.0] * 10          # surplus 08:00-14:00, hourly
    assert forecast_window_s([10_000.0], H, 5_000) == H, "no history: the window open now lasts one step"
    assert forecast_window_s([10_000.0], H, 20_000) == 0, "surplus below the need: no window"
    assert forecast_window_s(day + day[:10], H, 5_000) == 5 * H, "09:00 today: yesterday's window lasted 5 more h"
    assert forecast_window_s(day + day[:10], H, 12_000) == 0
    assert forecast_window_s([*day, *day[:8], math.nan], H, 5_000) == 0, "an unknown reading is never surplus"
    half = [0.0] * 8 + [10_000.0] * 2 + [4_000.0] * 4 + [0.0] * 10
    assert forecast_window_s(half + half[:10], H, 5_000) == H, "yesterday a 5 kW need was covered only to 10:00"


def test_surplus_is_supply_less_load_capped_by_the_site_budget() -> None:
    assert surplus(30_000, 10_000) == 20_000
    assert surplus(30_000, 10_000, budget_w=15_000) == 5_000
    assert surplus(5_000, 10_000) == -5_000


def _job(key: str, power: float, size: float | None = 10 * GB, here: str | None = "site-a") -> Candidate:
    return Candidate(key, power, size, here)


def test_a_job_stays_while_its_own_site_covers_it_and_moves_when_it_does_not() -> None:
    sites = [SiteNow("site-a", 2_000, H, 10e9), SiteNow("site-b", 50_000, 3 * H, 10e9)]
    (stay,) = plan_moves([_job("Job/x/a", 16_000)], sites, 0.2)
    assert not stay.move and stay.decision.reason.startswith("stays: site-a's renewable supply covers it")
    sites[0] = SiteNow("site-a", -1_000, 0, 10e9)
    (go,) = plan_moves([_job("Job/x/a", 16_000)], sites, 0.2)
    assert go.move and go.decision.site == "site-b" and go.decision.feasible
    unknown = [SiteNow("site-a", math.nan, 0, 10e9), sites[1]]
    (held,) = plan_moves([_job("Job/x/a", 16_000)], unknown, 0.2)
    assert not held.move and "unknown" in held.decision.reason, "an unread site is not a reason to move"
    (nowhere,) = plan_moves([_job("Job/x/a", 16_000, here=None)], sites, 0.2)
    assert not nowhere.move and "no site" in nowhere.decision.reason


def test_one_move_starts_per_period_and_takes_its_surplus_from_the_site() -> None:
    sites = [SiteNow("site-a", -1_000, 0, 10e9), SiteNow("site-b", 30_000, 3 * H, 10e9),
             SiteNow("site-c", 20_000, 3 * H, 10e9)]
    jobs = [_job("Job/x/small", 8_000), _job("Job/x/big", 16_000)]
    big, small = plan_moves(jobs, sites, 0.2)
    assert (big.key, big.move, big.decision.site) == ("Job/x/big", True, "site-b"), "largest job first"
    assert not small.move and small.decision.feasible and small.decision.reason.startswith("waits")
    assert small.decision.site == "site-c", "site-b has 14 kW left after the big job, site-c has 20 kW"
    both = plan_moves(jobs, sites, 0.2, max_starts=2)
    assert [d.move for d in both] == [True, True]


def test_the_window_is_judged_for_each_job_power_from_the_site_history() -> None:
    # site-b: yesterday 20 kW of surplus for 4 h from now, but only 6 kW after the first hour.
    yesterday = [20_000.0] + [6_000.0] * 3 + [0.0] * 20
    b = SiteNow("site-b", 20_000, 0, 1e9, tuple([*yesterday, 20_000.0]), H)
    a = SiteNow("site-a", -1_000, 0, 10e9)
    assert b.window_for(5_000) == 4 * H and b.window_for(16_000) == H
    small, = plan_moves([_job("Job/x/s", 5_000, size=400 * GB)], [a, b], 0.2)
    big, = plan_moves([_job("Job/x/b", 16_000, size=400 * GB)], [a, b], 0.2)
    assert small.move, small.decision.reason
    assert not big.move and big.decision.verdict is not None and big.decision.verdict.binding == "time"
    assert "3600 s window" in big.decision.reason


_site_names = ["site-a", "site-b", "site-c"]


@st.composite
def _scenes(draw: st.DrawFn) -> tuple[list[Candidate], list[SiteNow], int]:
    sites = [SiteNow(n, draw(st.floats(-50_000, 80_000)), draw(st.sampled_from([0.0, 600.0, H, 4 * H])),
                     draw(st.sampled_from([1e9, 1e10, 1e11]))) for n in _site_names]
    jobs = [Candidate(f"Job/x/j{i}", draw(st.floats(1_000, 40_000)),
                      draw(st.one_of(st.none(), st.sampled_from([1 * GB, 80 * GB, 2_000 * GB]))),
                      draw(st.sampled_from([*_site_names, None])))
            for i in range(draw(st.integers(0, 6)))]
    return jobs, sites, draw(st.integers(1, 3))


@settings(max_examples=300, deadline=None)
@given(_scenes())
def test_moves_only_go_where_surplus_and_window_allow(scene: tuple[list[Candidate], list[SiteNow], int]) -> None:
    jobs, sites, max_starts = scene
    decisions = plan_moves(jobs, sites, 0.2, max_starts)
    assert sorted(d.key for d in decisions) == sorted(j.key for j in jobs), "every job gets a decision"
    moves = [d for d in decisions if d.move]
    assert len(moves) <= max_starts
    by_site = {s.name: s for s in sites}
    power = {j.key: j.power_w for j in jobs}
    taken = {n: 0.0 for n in _site_names}
    for d in moves:
        job = next(j for j in jobs if j.key == d.key)
        assert job.checkpoint_bytes is not None, "no declared size, no move"
        assert job.here is not None and by_site[job.here].surplus_w < 0, "a job its own site covers stays"
        assert d.decision.site != job.here and d.decision.feasible
        assert d.decision.verdict is not None and d.decision.verdict.move_s <= d.decision.verdict.time_budget_s
        taken[d.decision.site] += power[d.key]
    for name, watts in taken.items():
        assert watts <= max(by_site[name].surplus_w, 0) + 1e-6, "a site never takes more than its surplus"
