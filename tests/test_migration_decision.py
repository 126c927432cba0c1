"""Where a job moves to follow renewable surplus, and the reason it stays when it does not."""

from __future__ import annotations

from gridshift.planner.migration import SiteNow, choose_destination

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
