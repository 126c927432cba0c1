"""Discharge pacing: the battery's endurance at its recent mean discharge, and how much of the cap
margin it may leave to the forecast when it would run out."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gridshift.forecaster.runtime import Forecaster
from gridshift.planner.ladder import BatteryState
from gridshift.planner.outlook import OutlookOptions, outlook
from gridshift.planner.pacing import DischargePace, endurance_s, pace_battery, paced_peak, pacing


def test_the_mean_discharge_follows_the_setpoints_with_its_time_constant() -> None:
    pace = DischargePace(tau_s=600)
    for t in range(0, 601, 5):
        pace.observe(float(t), 30_000.0)
    assert pace.mean_w == pytest.approx(30_000 * (1 - math.exp(-1)), rel=1e-6)
    for t in range(605, 6000, 5):
        pace.observe(float(t), -20_000.0)  # charging spends nothing
    assert 0 <= pace.mean_w < 30, "a charge counts as no discharge, and the mean decays toward it"
    before = pace.mean_w
    pace.observe(100.0, 50_000.0)
    assert pace.mean_w == before, "an observation from the past is ignored"
    with pytest.raises(ValueError, match="tau_s"):
        DischargePace(tau_s=0)


def test_endurance_is_the_energy_above_the_reserve_at_the_mean_discharge() -> None:
    # 60 kWh at 80 %, reserve 20 %: 36 kWh above the reserve, 1.2 h at 30 kW.
    assert endurance_s(0.8, 60_000, 0.2, 30_000) == pytest.approx(4320)
    assert endurance_s(0.8, 60_000, 0.2, 0.0) == math.inf
    assert endurance_s(0.1, 60_000, 0.2, 30_000) == 0.0


def test_the_margin_grows_from_none_at_the_endurance_to_all_of_it_when_empty() -> None:
    cap, trigger = 100_000.0, 95_000.0
    assert pacing(math.inf, 7200, cap, trigger).margin_w == 0
    assert pacing(7200, 7200, cap, trigger).margin_w == 0
    assert pacing(3600, 7200, cap, trigger).margin_w == pytest.approx(2_500)
    assert pacing(0, 7200, cap, trigger).margin_w == pytest.approx(5_000)
    assert not pacing(10, 0, cap, trigger).paced, "enduranceSeconds 0 turns pacing off"


def test_a_paced_battery_is_credited_with_what_it_sustains_for_the_pace() -> None:
    cap, trigger = 100_000.0, 95_000.0
    assert pacing(math.inf, 7200, cap, trigger, 24_000).credit_w is None, "not paced: its whole headroom counts"
    assert pacing(3600, 7200, cap, trigger, 24_000).credit_w == pytest.approx(12_000), "24 kWh over 2 h"
    assert pacing(0, 7200, cap, trigger, 0.0).credit_w == 0.0


def test_a_paced_battery_never_plans_below_the_median_or_the_load() -> None:
    assert paced_peak(110_000, 96_000, 90_000, 5_000) == 105_000
    assert paced_peak(110_000, 108_000, 90_000, 5_000) == 108_000, "the median stays under the trigger"
    assert paced_peak(96_000, 90_000, 97_000, 5_000) == 97_000, "never below what is measured"


def test_pacing_reads_the_setpoint_the_battery_held_and_its_state_of_charge() -> None:
    pace = DischargePace(tau_s=1800)
    full = BatteryState("ess", 0.8, 60_000, 60_000, setpoint_w=40_000)
    low = BatteryState("ess", 0.25, 60_000, 60_000, setpoint_w=40_000)
    assert pace_battery(pace, None, now=0, reserve_fraction=0.2, pace_s=7200, cap_w=1e5, trigger_w=9.5e4) is None
    first = pace_battery(pace, full, now=0, reserve_fraction=0.2, pace_s=7200, cap_w=1e5, trigger_w=9.5e4)
    assert first is not None and first.endurance_s == math.inf and not first.paced, "no discharge seen yet"
    later = None
    for t in range(5, 3600, 5):
        later = pace_battery(pace, low, now=t, reserve_fraction=0.2, pace_s=7200, cap_w=1e5, trigger_w=9.5e4)
    assert later is not None and later.paced
    # 3 kWh above the reserve at a mean near 35 kW: about five minutes, most of the margin.
    assert 200 < later.endurance_s < 400
    assert 4_000 < later.margin_w < 5_000


def test_the_outlook_lets_the_battery_bound_use_the_margin_but_not_below_the_median() -> None:
    student = Forecaster.load("default")
    rng = np.random.default_rng(0)
    values = 8_000 + 1_500 * np.sin(np.arange(300) / 9.0) + rng.normal(0, 200, 300)
    five_s = OutlookOptions(horizon_s=30, confidence=0.9, cap_w=10_000, battery_horizon_s=5)
    plain = outlook(student, values, 0.0, five_s)
    assert plain.battery_peak_w is not None and plain.battery_margin_w == 0
    paced = outlook(student, values, 0.0, replace(five_s, battery_margin_w=300))
    near_median = max(v for t, v in plain.predictions if t <= 5)
    assert paced.battery_peak_w == pytest.approx(max(plain.battery_peak_w - 300, near_median, paced.load_w)), \
        "the 5 s bound less the margin, or the median up to 5 s above it"
    assert paced.battery_peak_w < plain.battery_peak_w
    assert paced.battery_margin_w == 300
    assert paced.expected_peak_w == plain.expected_peak_w, "the workload rungs and the mode see the whole bound"
    wide = outlook(student, values, 0.0, replace(five_s, battery_margin_w=1e9))
    assert wide.battery_peak_w == pytest.approx(max(near_median, wide.load_w)), "at most down to the median"
    whole = outlook(student, values, 0.0,
                    OutlookOptions(horizon_s=10, confidence=0.9, cap_w=10_000, battery_margin_w=300))
    assert whole.battery_peak_w is not None and whole.battery_peak_w < whole.expected_peak_w, \
        "pacing applies when the battery plans on the whole horizon too"
