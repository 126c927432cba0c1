"""Peak shaving with the battery, simulated second by second with the operator's own planner.

A load series (watts at 1 s) meets a grid cap; a battery (``gridshift.ess.physics``) stands
behind it. Every ``period_s`` a strategy decides the battery setpoint, which takes effect
``response_s`` later, as a real PCS does:

- ``none``: the battery never moves;
- ``reactive``: a threshold controller, discharge = measured load - trigger while above it;
- ``persistence``: the operator's planner (``planner.plan``) on the operator's fallback outlook,
  which is the measured load;
- ``student``: the planner on the distilled student's calibrated upper bound (``planner.outlook``
  with the ONNX runtime), moved online by the operator's ``BoundTracker`` unless
  ``Setup.online_bound`` is off, exactly as the operator runs it;
- ``oracle``: the planner on the true peak of the next horizon: the upper bound of what any
  forecaster can give the same ladder.

Recharging (off-peak by the tariff, toward a target, after a dwell) is the planner's too. This is
the battery rung of the trace-driven simulator; workloads with drain and checkpoint delays come
next. No I/O: the caller passes the series and, for ``student``, the loaded model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np

from gridshift.ess.physics import BatteryPhysics
from gridshift.forecaster.conformal import BoundTracker
from gridshift.forecaster.runtime import Forecaster, Persistence
from gridshift.planner import BatteryState, PlanInput, PlanLimits, plan
from gridshift.planner.charging import ChargeRule, dwell_marks, recent_peak
from gridshift.planner.outlook import bound_tracker, outlook
from gridshift.planner.tariff import PeakWindow, is_peak

Strategy = Literal["none", "reactive", "persistence", "student", "oracle"]
STRATEGIES: tuple[Strategy, ...] = ("none", "reactive", "persistence", "student", "oracle")
DEMAND_INTERVAL_S = 900  # demand charges bill the highest 15-minute mean


@dataclass(frozen=True)
class Battery:
    """The battery at the start (its physics, copied for each run), its reserve and PCS delay."""

    physics: BatteryPhysics
    reserve_fraction: float = 0.2
    response_s: int = 1


@dataclass(frozen=True)
class Setup:
    cap_w: float
    trigger_w: float
    battery: Battery
    period_s: int = 5
    horizon_s: int = 30
    confidence: float = 0.9
    hysteresis: float = 0.05
    ramp_w_per_min: float | None = None   # None: 10% of the cap per minute, as the operator
    recharge: bool = True
    charge_target_fraction: float = 0.8
    dwell_s: float = 60.0
    peak_windows: tuple[PeakWindow, ...] = ()
    time_zone: str = "UTC"
    demand_price_per_kw: float = 15.0
    start_time: float = 1_767_225_600.0  # 2026-01-01T00:00Z: where the tariff clock starts
    online_bound: bool = True  # track the upper bound's coverage online, as the operator does


@dataclass
class Result:
    strategy: str
    seconds: int
    energy_above_cap_kwh: float
    worst_overshoot_w: float
    longest_overshoot_s: int
    peak_demand_kw: float
    demand_charge: float
    battery_discharged_kwh: float
    battery_charged_kwh: float
    battery_cycles: float
    actions: int
    final_soc: float
    soc_min: float
    grid_w: np.ndarray = field(repr=False)
    battery_w: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, float | int | str]:
        return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in asdict(self).items()
                if k not in ("grid_w", "battery_w")}


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for above in mask:
        run = run + 1 if above else 0
        best = max(best, run)
    return best


def simulate(load_w: Sequence[float] | np.ndarray, setup: Setup, strategy: Strategy,
             model: Forecaster | None = None) -> Result:
    """Run one strategy over ``load_w`` (watts, one sample a second)."""
    if strategy == "student" and model is None:
        raise ValueError("the student strategy needs a loaded forecaster model")
    load = np.asarray(load_w, dtype=float)
    n = len(load)
    b = setup.battery
    physics = replace(b.physics)
    limits = PlanLimits(cooldown_s=0.0, max_actions=3, hysteresis=setup.hysteresis,
                        ramp_w_per_min=setup.ramp_w_per_min or 0.1 * setup.cap_w, reserve_fraction=b.reserve_fraction)
    # The operator's views: the student, or persistence, its fallback when a model cannot be used.
    forecaster: Forecaster | Persistence = model if strategy == "student" and model is not None else Persistence()
    tracker = bound_tracker(forecaster, setup.confidence, None) if setup.online_bound else None
    # The oracle's view: the true maximum over [t, t + horizon].
    future_max = np.array([load[i:i + setup.horizon_s + 1].max() for i in range(n)]) if strategy == "oracle" else None
    setpoint = 0.0                      # what the controller has asked for
    pending: list[tuple[int, float]] = []  # (second it takes effect, setpoint)
    applied = 0.0                       # what the PCS is doing now
    last_change: float | None = None
    last_charge: float | None = None
    last_discharge: float | None = None
    actions = 0
    grid = np.empty(n)
    battery_w = np.empty(n)
    soc_min = physics.soc_fraction
    for i in range(n):
        now = setup.start_time + i
        if strategy != "none" and i % setup.period_s == 0 and i > 0:
            new = _decide(strategy, load[:i], i, now, setup, limits, physics, setpoint, last_change, last_charge,
                          last_discharge, forecaster, tracker, future_max)
            if new is not None and abs(new - setpoint) > 1e-6:
                charged, discharged = dwell_marks(setpoint, new)
                last_charge = now if charged else last_charge
                last_discharge = now if discharged else last_discharge
                setpoint = new
                last_change = now
                actions += 1
                pending.append((i + b.response_s, new))
        while pending and pending[0][0] <= i:
            applied = pending.pop(0)[1]
        power = physics.step(applied, 1.0)
        battery_w[i] = power
        grid[i] = load[i] - power
        soc_min = min(soc_min, physics.soc_fraction)
    over = np.maximum(grid - setup.cap_w, 0.0)
    peak_mask = np.array([is_peak(setup.peak_windows, setup.time_zone, setup.start_time + i)
                          for i in range(0, n, 60)]).repeat(60)[:n] if setup.peak_windows else np.ones(n, bool)
    billed = np.where(peak_mask, grid, 0.0)
    interval = min(DEMAND_INTERVAL_S, n)
    means = np.convolve(billed, np.ones(interval) / interval, mode="valid")
    peak_kw = float(means.max()) / 1000.0 if len(means) else 0.0
    return Result(
        strategy=strategy, seconds=n, energy_above_cap_kwh=float(over.sum()) / 3.6e6,
        worst_overshoot_w=float(over.max()) if n else 0.0, longest_overshoot_s=_longest_run(over > 0),
        peak_demand_kw=peak_kw, demand_charge=peak_kw * setup.demand_price_per_kw,
        battery_discharged_kwh=physics.discharged_ac_wh / 1000.0, battery_charged_kwh=physics.charged_ac_wh / 1000.0,
        battery_cycles=physics.discharged_ac_wh / physics.capacity_wh, actions=actions, final_soc=physics.soc_fraction,
        soc_min=soc_min, grid_w=grid, battery_w=battery_w)


def _decide(strategy: Strategy, history: np.ndarray, i: int, now: float, setup: Setup, limits: PlanLimits,
            physics: BatteryPhysics, setpoint: float, last_change: float | None, last_charge: float | None,
            last_discharge: float | None, forecaster: Forecaster | Persistence, tracker: BoundTracker | None,
            future_max: np.ndarray | None) -> float | None:
    """The new setpoint at second ``i`` (None: keep it). ``history`` is the load up to, not including, ``i``."""
    measured = float(history[-1])
    if strategy == "reactive":
        return max(0.0, min(measured - setup.trigger_w, physics.max_discharge_w)) if (
            physics.soc_fraction > limits.reserve_fraction) else 0.0
    if strategy == "oracle":
        assert future_max is not None
        expected = float(future_max[i])
    else:
        window = forecaster.meta.window if isinstance(forecaster, Forecaster) else 1
        if tracker is not None:
            recent = history[-(setup.horizon_s + 2 * setup.period_s):]
            tracker.settle(now - np.arange(len(recent))[::-1], recent)
        view = outlook(forecaster, history[-window:], now, horizon_s=setup.horizon_s, confidence=setup.confidence,
                       cap_w=setup.cap_w, tracker=tracker)
        if tracker is not None:
            tracker.add(view.bounds)
        expected = view.expected_peak_w
    battery = BatteryState("sim", physics.soc_fraction, physics.capacity_wh, physics.max_discharge_w,
                           setpoint_w=setpoint, managed_by="sim", soh_fraction=physics.soh_fraction,
                           max_charge_w=physics.max_charge_w, last_charge_at=last_charge,
                           last_discharge_at=last_discharge)
    charge = ChargeRule(off_peak=not is_peak(setup.peak_windows, setup.time_zone, now),
                        target_fraction=setup.charge_target_fraction, dwell_s=setup.dwell_s,
                        recent_peak_w=recent_peak(history, 1.0, setup.horizon_s)) if setup.recharge else None
    decided = plan(PlanInput("sim", now, setup.trigger_w, expected, ("battery",), battery=battery, limits=limits,
                             horizon_s=setup.horizon_s, period_s=setup.period_s, ramp_since=last_change,
                             charge=charge))
    for a in decided.actions:
        if a.setpoint_w is not None:
            setpoint = a.setpoint_w
    return setpoint
