"""Metric functions, windowing and the baselines, on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from gridshift.forecaster.baselines import (
    DLinear,
    MovingAverage,
    PersistenceBaseline,
    SeasonalNaive,
    estimate_period,
    periodic_naive,
)
from gridshift.forecaster.evaluate import evaluate
from gridshift.forecaster.metrics import (
    coverage,
    event_rates,
    mae,
    make_windows,
    onsets,
    peak_events,
    pinball,
    rmse,
    smape,
    summarize,
)
from gridshift.telemetry.series import Series


def test_metric_values():
    y, yhat = np.array([100.0, 200.0, 300.0]), np.array([110.0, 180.0, 300.0])
    assert mae(y, yhat) == pytest.approx(10.0)
    assert rmse(y, yhat) == pytest.approx(np.sqrt((100 + 400) / 3))
    assert smape(y, yhat) == pytest.approx(100 * np.mean([20 / 210, 40 / 380, 0.0]))
    assert smape(np.zeros(2), np.zeros(2)) == 0.0
    assert coverage(y, np.array([100.0, 150.0, 400.0])) == pytest.approx(2 / 3)
    assert pinball(np.array([10.0]), np.array([0.0]), 0.9) == pytest.approx(9.0)
    assert pinball(np.array([0.0]), np.array([10.0]), 0.9) == pytest.approx(1.0)
    block = summarize(y, yhat)
    assert block["mae_pct_of_mean"] == pytest.approx(100 * 10 / 200)
    assert block["coverage"] is None


def test_windows_line_up_inputs_and_targets():
    v = np.arange(20, dtype=float)
    x, y, origins = make_windows(v, 4, (1, 3))
    assert x[0].tolist() == [0, 1, 2, 3] and y[0].tolist() == [4, 6] and origins[0] == 3
    assert origins[-1] == 16  # the last origin whose 3-step target exists
    x, y, origins = make_windows(v, 4, (1, 3), origins=np.array([0, 10, 19]))
    assert origins.tolist() == [10]  # 0 lacks history, 19 lacks a future


def test_persistence_and_moving_average():
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert PersistenceBaseline(4, (1, 2)).predict(x).tolist() == [[4.0, 4.0]]
    ma = MovingAverage(4, (1,))
    ma.m = 2
    assert ma.predict(x).tolist() == [[3.5]]


def test_seasonal_naive_finds_the_period_and_forecasts_exactly():
    t = np.arange(600)
    v = np.where((t % 40) < 25, 4400.0, 1200.0)  # 25 s compute, 15 s checkpoint
    assert estimate_period(v, 120) == 40
    sn = SeasonalNaive(120, (5, 10, 30)).fit(v[:360])
    x, y, _ = make_windows(v, 120, (5, 10, 30), origins=np.arange(360, 560))
    assert mae(y, sn.predict(x)) == 0.0
    assert mae(y, PersistenceBaseline(120, (5, 10, 30)).predict(x)) > 500


def test_no_period_in_a_trend():
    assert estimate_period(np.linspace(0, 1, 300), 100) is None


def test_periodic_naive_follows_a_period_that_changes():
    """Checkpoints every 40 s, then every 90 s: re-estimated at each origin on the last 5 minutes,
    the period-aware seasonal naive is exact on both once its context holds the new rhythm, where the
    fixed-period seasonal naive fitted on the first part is not."""
    t = np.arange(1800)
    v = np.where(t < 900, np.where(t % 40 < 25, 4400.0, 1200.0), np.where(t % 90 < 60, 4400.0, 1200.0))
    origins = np.concatenate([np.arange(400, 860), np.arange(1300, 1760)])
    forecast = periodic_naive(v, origins, (5, 10, 30), 300)
    y = v[origins[:, None] + np.array([5, 10, 30])]
    assert mae(y, forecast) == 0.0
    fixed = SeasonalNaive(120, (5, 10, 30)).fit(v[:900])
    x, y_late, _ = make_windows(v, 120, (5, 10, 30), origins=np.arange(1300, 1760))
    assert mae(y_late, fixed.predict(x)) > 500


def test_periodic_naive_is_persistence_without_a_period():
    v = 1000 + 2.0 * np.arange(600)
    origins = np.arange(300, 560)
    assert periodic_naive(v, origins, (5, 30), 300) == pytest.approx(np.repeat(v[origins][:, None], 2, axis=1))


def test_onsets_are_debounced():
    v = np.zeros(200)
    v[50:60] = 10  # onset at 50
    v[70:75] = 10  # 10 samples below: the same peak
    v[120:130] = 10  # 45 below: a new onset
    assert onsets(v, 5.0, debounce=30).tolist() == [50, 120]
    assert onsets(np.full(10, 10.0), 5.0, debounce=30).tolist() == []  # above from the start: no crossing seen


def test_a_peak_detector_is_scored_on_lead_and_false_alarms():
    v = np.zeros(600)
    v[100:120] = 10
    v[300:320] = 10
    alarm = np.zeros(600, dtype=bool)
    alarm[85:120] = True  # 15 s ahead of the first onset
    alarm[297:320] = True  # 3 s ahead of the second: too late to count
    alarm[450:460] = True  # no peak follows within the horizon: false
    counts = peak_events(v, alarm, 5.0, horizon=30, lead=10, debounce=30)
    assert (counts["onsets"], counts["flagged"], counts["false_alarms"]) == (2, 1, 1)
    assert counts["leads"] == [15.0, 3.0]
    rates = event_rates([counts], step_s=1.0, lead_s=10.0)
    assert rates["flagged_ahead"] == 0.5 and rates["median_lead_s"] == 9.0
    assert rates["false_alarms_per_10min"] == pytest.approx(1.0)
    assert rates["time_in_alarm"] == pytest.approx((35 + 23 + 10) / 600)


def test_evaluate_scores_every_model_as_a_peak_detector():
    t = np.arange(1200)
    v = np.where((t % 100) < 20, 4400.0, 1200.0)  # a peak every 100 s
    series = [Series(0, 1.0, v, "synthetic")]
    assert evaluate(series, {}, 120, (5.0, 10.0, 30.0), 1.0)["event_caps_w"] == [4400.0]  # the scored part's p90
    report = evaluate(series, {}, 120, (5.0, 10.0, 30.0), 1.0, cap_w=3000.0)
    assert report["event_caps_w"] == [3000.0]
    periodic, persistence = report["events"]["periodic_naive"], report["events"]["persistence"]
    assert periodic["onsets"] == persistence["onsets"] > 0
    assert persistence["flagged_ahead"] == 0.0  # persistence sees a peak only once it is there
    assert periodic["flagged_ahead"] == 1.0 and periodic["median_lead_s"] >= 10


def test_dlinear_learns_a_ramp():
    v = 1000 + 5.0 * np.arange(800)
    model = DLinear(60, (5, 30)).fit(v[:480])
    x, y, _ = make_windows(v, 60, (5, 30), origins=np.arange(480, 760))
    assert mae(y, model.predict(x)) < 2.0  # persistence is off by 25 W and 150 W here


def test_evaluate_reports_every_baseline_and_json_shape():
    t = np.arange(900)
    v = np.where((t % 40) < 25, 4400.0, 1200.0)
    report = evaluate([Series(0, 1.0, v, "synthetic")], {}, 120, (5.0, 10.0, 30.0), 1.0)
    assert report["series"] == 1 and report["points"] == 900 - 540 - 30
    assert set(report["metrics"]) == {"persistence", "seasonal_naive", "moving_average", "dlinear",
                                      "periodic_naive", "persistence_online"}
    block = report["metrics"]["seasonal_naive"]["30"]
    assert set(block) == {"mae", "rmse", "smape", "mae_pct_of_mean", "coverage", "coverage_static",
                          "bound_gap_pct_of_mean", "coverage_whole_run"}
    assert block["mae"] == 0.0 and block["coverage_whole_run"] is None


def test_evaluate_scores_the_bound_as_the_operator_tracks_it():
    """A model whose offline bound sits 2 kW above its median: it always holds (static coverage 1)
    and says nothing; tracked online from the series' start, it closes in to about its level."""
    rng = np.random.default_rng(0)
    v = 3000.0 + rng.normal(0.0, 200.0, 3000)

    def wide(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p50 = np.full((len(x), 3), 3000.0)
        return p50, p50 + 2000.0

    block = evaluate([Series(0, 1.0, v, "noise")], {"wide": wide}, 120, (5.0, 10.0, 30.0), 1.0,
                     confidence=0.9)["metrics"]["wide"]["10"]
    assert block["coverage_static"] == 1.0
    assert block["coverage"] == pytest.approx(0.9, abs=0.04)
    assert block["bound_gap_pct_of_mean"] < 15, "the tracked bound sits near the truth, not 2 kW above it"


def test_evaluate_reports_the_whole_run_coverage_the_tracker_steers():
    """Swinging load for the first 60 %, calm after: the tracker widens the bound while it misses
    and narrows it only slowly, so the scored 40 % over-covers, while over the whole run the bound
    holds about as often as its level says."""
    rng = np.random.default_rng(1)
    v = 3000.0 + np.concatenate([rng.normal(0.0, 1500.0, 480), rng.normal(0.0, 100.0, 320)])

    def calm(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p50 = np.full((len(x), 3), 3000.0)
        return p50, p50 + 128.0  # the 90 % bound of the calm part

    report = evaluate([Series(0, 1.0, v, "settles")], {"calm": calm}, 120, (5.0, 10.0, 30.0), 1.0,
                      confidence=0.9)
    block = report["metrics"]["calm"]["10"]
    assert report["origins_whole_run"] == 800 - 120 - 30 + 1
    assert block["coverage"] > 0.97
    assert block["coverage_whole_run"] == pytest.approx(0.9, abs=0.03)
