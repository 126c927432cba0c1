"""Online adaptation of the median to the site (forecaster/adapt.py), as the operator, the
simulator and the evaluation run it."""

from __future__ import annotations

import numpy as np
import pytest

from gridshift.forecaster.adapt import OnlineAdapter, adapted_medians
from gridshift.forecaster.metrics import mae, make_windows
from gridshift.forecaster.runtime import Forecaster
from gridshift.planner.outlook import OutlookOptions, learn_from, online_adapter, outlook
from tests.conftest import SHARED_DATA

H100 = SHARED_DATA / "gpu-power" / "h100-8gpu-llm-training"
STEPS = (5, 10, 30)


def square_wave(seconds: int, period: int = 70, high: int = 45, seed: int = 0) -> np.ndarray:
    """A training job's rhythm: compute at 4.4 kW for ``high`` s, then checkpoint at 1.2 kW."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds)
    return np.where(t % period < high, 4400.0, 1200.0) + rng.normal(0, 20, seconds)


def persistence(windows: np.ndarray) -> np.ndarray:
    return np.repeat(windows[:, -1:], len(STEPS), axis=1)


def test_an_adapter_that_learned_nothing_returns_the_networks_median() -> None:
    adapter = OnlineAdapter(120, (5.0, 10.0, 30.0), 1.0)
    window = square_wave(120)
    p50 = np.array([3000.0, 2500.0, 1500.0])
    assert adapter.adjust(window, p50) == pytest.approx(p50)


def test_it_learns_a_jobs_rhythm_that_persistence_misses() -> None:
    values = square_wave(900)
    x, y, _ = make_windows(values, 120, STEPS)
    adapted = adapted_medians(x, persistence(x), y, STEPS, 1.0)
    later = slice(400, None)  # after a few cycles
    for k in (1, 2):  # 10 s and 30 s
        assert mae(y[later, k], adapted[later, k]) < 0.5 * mae(y[later, k], x[later, -1])


def test_learning_step_by_step_issues_what_the_replay_scores() -> None:
    """learn() on a history growing one step at a time gives the forecasts that adapted_medians()
    scores (the evaluation); the operator and the simulator call the same learn() once per period."""
    values = square_wave(400, period=50, high=30, seed=1)
    x, y, origins = make_windows(values, 120, STEPS)
    adapter = OnlineAdapter(120, (5.0, 10.0, 30.0), 1.0)
    replay = adapted_medians(x, persistence(x), y, STEPS, 1.0, anchor=adapter.anchors(values, origins))
    times = np.arange(len(values), dtype=float)
    for row, origin in enumerate(origins):
        adapter.learn(times[: origin + 1], values[: origin + 1], persistence)
        issued = adapter.adjust(values[: origin + 1], persistence(x[row:row + 1])[0])
        assert issued == pytest.approx(replay[row], rel=1e-9, abs=1e-6)
    assert adapter.learn(times, values[: len(times)], persistence) > 0
    assert adapter.learn(times, values[: len(times)], persistence) == 0  # nothing learned twice


def test_a_period_longer_than_the_networks_window_is_followed() -> None:
    """A checkpoint every 150 s does not fit the network's 2-minute window; the periodic anchor,
    estimated on the last 5 minutes, still carries it, so adapting persistence beats it by far."""
    values = square_wave(1500, period=150)
    x, y, origins = make_windows(values, 120, STEPS)
    adapter = OnlineAdapter(120, (5.0, 10.0, 30.0), 1.0)
    adapted = adapted_medians(x, persistence(x), y, STEPS, 1.0, anchor=adapter.anchors(values, origins))
    without = adapted_medians(x, persistence(x), y, STEPS, 1.0)
    later = origins >= 900
    for k in range(len(STEPS)):
        assert mae(y[later, k], adapted[later, k]) < 0.5 * mae(y[later, k], without[later, k])


def test_it_falls_back_to_persistence_when_neither_the_network_nor_its_regression_holds() -> None:
    """A network far off and a regime change: within minutes the adapted median is no worse than
    persistence, the candidate it keeps beside its regressions."""
    rng = np.random.default_rng(3)
    values = 2000 + np.cumsum(rng.normal(0, 40, 1500))  # a random walk: persistence is optimal
    x, y, origins = make_windows(values, 120, STEPS)
    adapter = OnlineAdapter(120, (5.0, 10.0, 30.0), 1.0)
    adapted = adapted_medians(x, persistence(x) + 500 * np.sin(origins / 7.0)[:, None], y, STEPS, 1.0,
                              anchor=adapter.anchors(values, origins))
    later = origins >= 900
    for k in range(len(STEPS)):
        assert mae(y[later, k], adapted[later, k]) <= 1.1 * mae(y[later, k], x[later, -1])


def test_a_forecast_stays_inside_the_windows_range() -> None:
    adapter = OnlineAdapter(120, (5.0, 10.0, 30.0), 1.0)
    values = square_wave(600)
    adapter.learn(np.arange(600.0), values, lambda w: persistence(w) * 3.0)  # a network far too high
    window = values[-120:]
    out = adapter.adjust(window, window[-1] * np.full(3, 3.0))
    assert (out <= window.max() + 1e-9).all() and (out >= window.min() - 1e-9).all()


@pytest.mark.parametrize(("option", "value"), [("half_lives_s", (60.0, 0.0)), ("score_half_life_s", 0.0),
                                               ("ridge", -1.0)])
def test_bad_settings_name_the_field(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        OnlineAdapter(120, (5.0,), 1.0, **{option: value})


def test_the_outlook_moves_every_bound_with_the_adapted_median() -> None:
    student = Forecaster.load("default")
    values = square_wave(900)
    times = np.arange(900.0)
    adapter = online_adapter(student, None)
    assert adapter is not None
    options = OutlookOptions(horizon_s=30, confidence=0.9, cap_w=1e6)
    plain = outlook(student, values[:-300], times[-301], options)
    learn_from(adapter, student, times[:-300], values[:-300])
    moved = outlook(student, values[:-300], times[-301], options, adapter=adapter)
    shift = np.array([p for _, p in moved.predictions]) - np.array([p for _, p in plain.predictions])
    assert np.abs(shift).max() > 10.0  # it learned something
    bounds = np.array([b for _, _, b in moved.bounds]) - np.array([b for _, _, b in plain.bounds])
    assert bounds == pytest.approx(shift, abs=1e-3)


@pytest.mark.skipif(not H100.is_dir(), reason=f"shared traces not found at {H100}")
def test_on_a_real_training_run_adaptation_beats_persistence_at_10_and_30_s() -> None:
    from gridshift.telemetry.series import longest
    from gridshift.telemetry.traces import load_nvidia_smi_csv

    run = longest(load_nvidia_smi_csv(H100 / "run-2025-07-26T23-32-per-gpu.csv").node().resample(1.0, 5.0))
    x, y, origins = make_windows(run.values, 120, STEPS)
    adapted = adapted_medians(x, persistence(x), y, STEPS, 1.0)
    scored = origins >= int(0.6 * len(run.values))
    for k in (1, 2):
        assert mae(y[scored, k], adapted[scored, k]) < 0.8 * mae(y[scored, k], x[scored, -1])
