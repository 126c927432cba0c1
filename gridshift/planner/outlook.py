"""From a window of measured watts to what the planner compares with the budget: the forecast
upper bound over the horizon, the risk of crossing the cap, and whether the forecast can be
trusted at all. Pure: the operator and the simulator feed it the same way."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from gridshift.forecaster.adapt import OnlineAdapter
from gridshift.forecaster.conformal import BoundTracker
from gridshift.forecaster.runtime import Forecaster, Persistence
from gridshift.planner.charging import rise_quantile
from gridshift.planner.pacing import paced_peak
from gridshift.planner.skill import SkillGate

ControlMode = Literal["predictive", "reactive"]


@dataclass(frozen=True)
class Outlook:
    load_w: float
    expected_peak_w: float          # what the planner plans against
    forecast_peak_w: float | None   # upper bound over the horizon (None: no usable forecast)
    median_peak_w: float | None
    peak_risk: float | None         # probability of crossing the cap within the horizon
    mode: ControlMode
    reason: str                     # why reactive, or "" when predictive
    predictions: tuple[tuple[float, float], ...] = ()  # (time the forecast is for, p50 watts)
    bounds: tuple[tuple[float, int, float], ...] = ()  # (time, horizon index, upper bound watts) as issued
    workload_peak_w: float | None = None  # the peak at the workload rungs' level (None: expected_peak_w)
    battery_peak_w: float | None = None   # the bound up to the battery's horizon, paced (None: expected_peak_w)
    battery_margin_w: float = 0.0         # watts of the cap margin the battery's bound was let use (pacing)
    # what the battery would plan against on persistence (the measured load plus its recent rise within
    # the battery's horizon at the level): what the model's battery bound is scored against (planner.skill)
    persistence_battery_w: float | None = None
    model_battery_w: float | None = None  # the model's bound up to the battery's horizon, used or not (planner.skill)

    @property
    def battery_bound_w(self) -> float:
        """What the battery plans against."""
        return self.expected_peak_w if self.battery_peak_w is None else self.battery_peak_w


def crossing_risk(levels: list[tuple[float, float]], cap_w: float) -> float:
    """``levels``: (quantile, watts) pairs ascending. The risk is one minus the highest quantile whose
    bound stays below the cap (1 when even the median reaches it)."""
    below = [q for q, watts in levels if watts < cap_w]
    return round(1.0 - max(below), 4) if below else 1.0


@dataclass(frozen=True)
class OutlookOptions:
    """How a policy looks ahead in one period.

    ``horizon_s``: how far the workload rungs look (they take minutes to undo). ``confidence``: the
    level of the upper bound the battery plans against (0.5: the median). ``cap_w``: the cap the
    crossing risk is measured against. ``ceiling_w``: the most the governed hardware can draw; no
    forecast goes above it. ``workload_confidence``: the level the workload rungs plan against
    (``Outlook.workload_peak_w``; None: the battery's). ``battery_horizon_s``: how far the battery's
    bound looks (``Outlook.battery_peak_w``): it is set again every period, so it needs the bound
    only up to the next one (None: the whole horizon). ``battery_margin_w``: how much of the margin
    between the trigger and the cap the battery's bound may use (``planner.pacing``): it then plans
    against that bound less the margin, never below the median up to its horizon."""

    horizon_s: float
    confidence: float
    cap_w: float
    ceiling_w: float | None = None
    workload_confidence: float | None = None
    battery_horizon_s: float | None = None
    battery_margin_w: float = 0.0


def outlook(model: Forecaster | Persistence, values: np.ndarray, newest_time: float, options: OutlookOptions, *,
            distrust: str | None = None, tracker: BoundTracker | None = None,
            adapter: OnlineAdapter | None = None) -> Outlook:
    """The forecast view of one control period. Too short a history, a model without an upper bound,
    or a forecast not trusted (``distrust`` says why) all fall back to reactive control on the
    persistence outlook (the measured load, and for the battery its recent rise; see ``_persistence``).
    ``tracker`` moves the bound at ``options.confidence`` by its online margins (feed it
    ``Outlook.bounds`` and, later, the measured load). ``adapter`` adapts the median to this site
    (feed it the measured series with :func:`learn_from`); every upper level moves with it, keeping
    the network's calibrated spread above the median."""
    o = options
    load = float(values[-1])
    fallback = _persistence(values, step_s(model), o.horizon_s, o.battery_horizon_s, o.confidence)
    if isinstance(model, Persistence):
        return fallback("no forecaster model: persistence")
    window = model.meta.window
    if len(values) < window:
        return fallback(f"warming up: {len(values)} of {window} samples of history")
    fc = model.predict(values[-window:])
    if adapter is not None:
        moved = adapter.adjust(values, fc.p50[0]) - fc.p50[0]  # every level moves with the median
        fc = replace(fc, p50=fc.p50 + moved, upper=None if fc.upper is None else fc.upper + moved)
    if o.ceiling_w is not None:
        fc = replace(fc, p50=np.minimum(fc.p50, o.ceiling_w),
                     upper=None if fc.upper is None else np.minimum(fc.upper, o.ceiling_w))
    horizons = np.asarray(fc.horizons_s)
    rival = fallback("").battery_bound_w
    use = _up_to(horizons, o.horizon_s)
    p50 = fc.p50[0]
    predictions = tuple((newest_time + float(h), float(v)) for h, v in zip(horizons, p50, strict=True))
    median_peak = float(p50[use].max())
    if fc.upper is None:
        return replace(fallback("model has no upper bound"), median_peak_w=median_peak, predictions=predictions,
                       persistence_battery_w=rival)
    upper = fc.upper_at(o.confidence)[0]
    if tracker is not None:
        upper = tracker.adjust(upper, float(np.mean(values[-window:])), floor=p50 if o.confidence > 0.5 else None)
        if o.ceiling_w is not None:
            upper = np.minimum(upper, o.ceiling_w)
    bounds = tuple((newest_time + float(h), k, float(u)) for k, (h, u) in enumerate(zip(horizons, upper, strict=True)))
    upper_peak = float(upper[use].max())
    levels = [(0.5, median_peak)] + [(q, float(fc.upper[0, i][use].max())) for i, q in enumerate(fc.quantiles)]
    risk = crossing_risk(levels, o.cap_w)
    span = o.horizon_s if o.battery_horizon_s is None else min(o.battery_horizon_s, o.horizon_s)
    near = _up_to(horizons, span)
    model_battery = max(load, float(upper[near].max()))
    if distrust is not None:
        return replace(fallback(distrust), forecast_peak_w=upper_peak, median_peak_w=median_peak, peak_risk=risk,
                       predictions=predictions, bounds=bounds, persistence_battery_w=rival,
                       model_battery_w=model_battery)
    battery_peak = None
    if span < o.horizon_s or o.battery_margin_w > 0:
        battery_peak = paced_peak(float(upper[near].max()), float(p50[near].max()), load, o.battery_margin_w)
    workload_peak = None
    if o.workload_confidence is not None and o.workload_confidence < o.confidence:
        level = fc.upper_at(o.workload_confidence)[0] if o.workload_confidence > 0.5 else p50
        workload_peak = max(load, float(level[use].max()))
    return Outlook(load_w=load, expected_peak_w=max(load, upper_peak), forecast_peak_w=upper_peak,
                   median_peak_w=median_peak, peak_risk=risk, mode="predictive", reason="", predictions=predictions,
                   bounds=bounds, workload_peak_w=workload_peak, battery_peak_w=battery_peak,
                   battery_margin_w=max(0.0, o.battery_margin_w) if battery_peak is not None else 0.0,
                   persistence_battery_w=rival, model_battery_w=model_battery)


def step_s(model: Forecaster | Persistence) -> float:
    """Seconds between the samples ``model`` takes."""
    return model.step_s if isinstance(model, Persistence) else model.meta.step_s


def _persistence(values: np.ndarray, step: float, horizon_s: float, battery_horizon_s: float | None,
                 confidence: float) -> Callable[[str], Outlook]:
    """The persistence outlook, what the policy plans on without a usable forecast (reactive mode):
    the workloads see the measured load; the battery sees it plus how far the load rose within the
    battery's horizon (the next period) at ``confidence`` over the history given: an empirical upper
    bound that needs no model, learned from this site's own swings, so a rise within the period is
    met as often as the forecast's bound would meet it, not only after it arrived. That bound is
    also what the ladder shaves and restores against: a rise over the whole horizon would carry a
    single surge in the history (or a restore's own step) into every period for minutes, and hold
    back restores that fit."""
    load = float(values[-1])
    span = horizon_s if battery_horizon_s is None else min(battery_horizon_s, horizon_s)
    bound = load + rise_quantile(values, max(1, round(span / step)), confidence) if confidence > 0.5 else load

    def view(reason: str) -> Outlook:
        return Outlook(load_w=load, expected_peak_w=bound, forecast_peak_w=None, median_peak_w=None, peak_risk=None,
                       mode="reactive", reason=reason, workload_peak_w=load)

    return view


def _up_to(horizons: np.ndarray, span_s: float) -> np.ndarray:
    """Which model horizons lie within ``span_s`` (the first one when none is that short)."""
    use = horizons <= span_s + 1e-9
    if not use.any():
        use[0] = True
    return use


def online_adapter(model: Forecaster | Persistence, current: OnlineAdapter | None) -> OnlineAdapter | None:
    """The adapter for ``model``: ``current`` while it was learned for the same network and shape, a
    fresh one when the window, step or horizons changed or the network was replaced (a new model in
    the ConfigMap, even of the same shape: what it learned corrects the old network's medians), none
    for persistence."""
    if isinstance(model, Persistence):
        return None
    meta = model.meta
    if current is not None and (current.network, current.window, current.horizons_s, current.step_s) == (
            model.student.sha256, meta.window, tuple(float(h) for h in meta.horizons_s), meta.step_s):
        return current
    return OnlineAdapter(meta.window, meta.horizons_s, meta.step_s, network=model.student.sha256)


def learn_from(adapter: OnlineAdapter | None, model: Forecaster | Persistence, times: np.ndarray,
               values: np.ndarray) -> None:
    """Teach ``adapter`` every matured origin of the measured series, with ``model``'s medians."""
    if adapter is not None and isinstance(model, Forecaster):
        adapter.learn(times, values, lambda windows: model.predict(windows).p50)


def bound_tracker(model: Forecaster | Persistence, confidence: float,
                  current: BoundTracker | None) -> BoundTracker | None:
    """The tracker for ``model`` at ``confidence``: ``current`` while it tracks the same network's
    bound at the same level, a fresh one when the level changed or the network was replaced (its
    margins corrected the old network's calibration), none for a model without an upper bound."""
    if isinstance(model, Persistence):
        return None
    horizons = len(model.meta.horizons_s)
    if current is not None and (current.level, current.network, len(current.margins)) == (
            confidence, model.student.sha256, horizons):
        return current
    return BoundTracker(confidence, horizons, network=model.student.sha256)


def skill_gate(model: Forecaster | Persistence, confidence: float, current: SkillGate | None) -> SkillGate | None:
    """The skill gate for ``model`` at ``confidence``: ``current`` while it scores the same network at
    the same level, a fresh one when either changed (its scores belong to the old network), none for
    persistence, which has nothing to be scored against."""
    if isinstance(model, Persistence):
        return None
    level = max(0.5, confidence)
    if current is not None and (current.level, current.network) == (level, model.student.sha256):
        return current
    return SkillGate(level, network=model.student.sha256)


class ErrorTracker:
    """Compares past p50 forecasts with what was then measured. ``fraction`` is the mean absolute
    error over the mean measured power of the last ``keep`` matured forecasts."""

    def __init__(self, keep: int = 60, min_samples: int = 10):
        self.pending: deque[tuple[float, float]] = deque(maxlen=1000)
        self.errors: deque[tuple[float, float]] = deque(maxlen=keep)
        self.min_samples = min_samples

    def add(self, predictions: tuple[tuple[float, float], ...]) -> None:
        self.pending.extend(predictions)

    def settle(self, times: np.ndarray, values: np.ndarray) -> None:
        """Score every pending forecast whose time is covered by the measured series."""
        if len(times) == 0:
            return
        keep: deque[tuple[float, float]] = deque(maxlen=self.pending.maxlen)
        for when, predicted in self.pending:
            if when <= times[-1] and when >= times[0]:
                actual = float(np.interp(when, times, values))
                self.errors.append((abs(predicted - actual), actual))
            elif when > times[-1]:
                keep.append((when, predicted))
        self.pending = keep

    @property
    def fraction(self) -> float | None:
        if len(self.errors) < self.min_samples:
            return None
        err = np.array(self.errors)
        return float(err[:, 0].mean() / max(err[:, 1].mean(), 1.0))
