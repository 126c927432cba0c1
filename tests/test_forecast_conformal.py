"""Online tracking of the forecast upper bound (gridshift.forecaster.conformal): it restores the
nominal coverage under shift, narrows a bound that is too wide, and never looks ahead."""

from __future__ import annotations

import numpy as np
import pytest

from gridshift.forecaster.conformal import BoundTracker, tracked_bounds

STEPS = (5, 10, 30)


def _site(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets ``[n, 3]`` around 3 kW with noise that doubles halfway (a shift the offline
    calibration never saw), and each window's mean power."""
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(n) < n // 2, 200.0, 400.0)[:, None]
    actual = 3000.0 + rng.normal(0.0, 1.0, (n, len(STEPS))) * sigma
    return actual, np.full(n, 3000.0)


def test_tracking_brings_an_under_covering_bound_to_its_level() -> None:
    actual, unit = _site()
    static = np.full_like(actual, 3000.0 + 1.2816 * 200.0)  # the p90 of the first half only
    tracked = tracked_bounds(static, actual, unit, STEPS, level=0.9)
    late = slice(4000, None)  # well after the shift
    assert np.mean(actual[late] <= static[late]) < 0.75, "the shift really breaks the static bound"
    for k in range(len(STEPS)):
        assert np.mean(actual[late, k] <= tracked[late, k]) == pytest.approx(0.9, abs=0.03)


def test_tracking_narrows_a_bound_that_is_too_wide() -> None:
    actual, unit = _site()
    median = np.full_like(actual, 3000.0)
    wide = np.full_like(actual, 6000.0)  # holds always, so it says nothing
    tracked = tracked_bounds(wide, actual, unit, STEPS, level=0.9, floor=median)
    late = slice(4000, None)
    assert np.mean(tracked[late] - actual[late]) < 0.25 * np.mean(wide[late] - actual[late])
    assert np.all(tracked >= median), "the bound never goes below the median"
    assert np.mean(actual[late] <= tracked[late]) == pytest.approx(0.9, abs=0.03)


def test_a_bound_only_moves_on_forecasts_whose_time_has_passed() -> None:
    actual, unit = _site(600)
    static = np.full_like(actual, 3300.0)
    before = tracked_bounds(static, actual, unit, STEPS, level=0.9)
    changed = actual.copy()
    changed[300:] += 5000.0  # the future is very different
    after = tracked_bounds(static, changed, unit, STEPS, level=0.9)
    # Horizon k of origin i matures at i + steps[k]: origins up to 300 + 5 cannot have seen the change.
    np.testing.assert_array_equal(before[: 300 + STEPS[0]], after[: 300 + STEPS[0]])
    assert np.all(after[300 + STEPS[-1] + 50:] >= before[300 + STEPS[-1] + 50:])


def test_the_tracker_settles_by_time_as_the_operator_feeds_it() -> None:
    tracker = BoundTracker(level=0.8, horizons=2, rate=0.1)
    tracker.add([(10.0, 0, 1000.0), (12.0, 1, 900.0), (50.0, 0, 1.0)])
    tracker.settle(np.arange(0.0, 21.0), np.full(21, 950.0))
    assert tracker.margins[0] == pytest.approx(-0.1 * 0.2), "a bound that held narrows"
    assert tracker.margins[1] == pytest.approx(0.1 * 0.8), "a bound that was crossed widens"
    assert [p[0] for p in tracker.pending] == [50.0], "not due yet"
    assert tracker.coverage == pytest.approx(0.5)
    assert tracker.adjust(np.array([1000.0, 1000.0]), unit_w=1000.0).tolist() == pytest.approx([980.0, 1080.0])
    assert tracker.adjust(np.array([1000.0, 1000.0]), 1000.0, floor=np.array([990.0, 0.0]))[0] == 990.0
    assert BoundTracker(0.9, 3).coverage is None


@pytest.mark.parametrize("level, rate", [(1.0, 0.02), (0.0, 0.02), (0.9, 0.0)])
def test_impossible_settings_are_refused(level: float, rate: float) -> None:
    with pytest.raises(ValueError, match=r"^(level|rate) must be"):
        BoundTracker(level, 3, rate)
