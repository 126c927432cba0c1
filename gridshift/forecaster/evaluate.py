"""Score forecasters and baselines on the same windows (numpy and the ONNX runtime only).

Protocol, per evaluated series: the baselines that need fitting are fitted on its first
``fit_fraction`` (60 %); every model is scored on forecast origins in the remaining 40 % (the
input window may reach back into the first part; that is the past, not leakage). Metrics are
pooled over all series, per horizon, in watts.

A model's upper bound is scored as the operator uses it: tracked online by
:class:`~gridshift.forecaster.conformal.BoundTracker` from the first origin of the series on,
causally (a forecast only moves the margin once its target time has passed). ``coverage`` is that
bound's; ``coverage_static`` is the offline-calibrated bound's alone. ``coverage_whole_run`` is the
tracked bound's over every origin of the series, the first 60 % included: the share the tracker
steers toward its level. A tracker that missed often early on makes up for it with a wider bound
later, so on a short series the last 40 % alone can over-cover while the whole run does not.

Each network's median is scored as the operator runs it, adapted online to the series by
:class:`~gridshift.forecaster.adapt.OnlineAdapter` from the first origin on (its bound moves with
it, keeping the network's calibrated spread); ``NAME_offline`` is the network alone and
``persistence_online`` the adapter on persistence, which shows what the network adds to the
adaptation. ``periodic_naive`` is the period-aware seasonal naive
(:func:`~gridshift.forecaster.baselines.periodic_naive`): the period re-estimated at every origin
on the last 5 minutes of the series, persistence where no period is clear.

Each model is also scored as a peak detector (``events``): on the scored part of each series the
cap is ``cap_w`` or that part's 90th percentile; an alarm is raised at an origin when the model's
bound (its median where it has none) at any horizon is above the cap. Onsets are crossings of the
cap after 30 s below it; ``flagged_ahead`` is the share raised ``lead_s`` (10 s) or more before,
with the median lead, false alarms (alarm episodes with no crossing until the horizon after them)
per 10 minutes and the share of time in alarm (:func:`~gridshift.forecaster.metrics.peak_events`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gridshift.forecaster.adapt import adapted_medians
from gridshift.forecaster.baselines import BASELINES, PERIODIC_CONTEXT_S, PersistenceBaseline, periodic_naive
from gridshift.forecaster.conformal import tracked_bounds
from gridshift.forecaster.metrics import event_rates, make_windows, peak_events, summarize
from gridshift.forecaster.runtime import Forecaster
from gridshift.telemetry.series import Series

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def forecaster_predictors(model: Forecaster, confidence: float = 0.9) -> dict[str, Predictor]:
    """One predictor per network of a model directory (student, student_no_kd, teacher, ...)."""

    def make(name: str) -> Predictor:
        def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            fc = model.predict(x, network=name)
            return fc.p50, (fc.upper_at(confidence) if fc.upper is not None else None)
        return predict

    return {name: make(name) for name in model.available()}


def evaluate(
    series: list[Series],
    models: dict[str, Predictor],
    window: int,
    horizons_s: tuple[float, ...],
    step_s: float,
    fit_fraction: float = 0.6,
    confidence: float = 0.9,
    cap_w: float | None = None,
    lead_s: float = 10.0,
    debounce_s: float = 30.0,
) -> dict:
    steps = tuple(round(h / step_s) for h in horizons_s)
    names = (list(models) + [b.name for b in BASELINES] + ["periodic_naive"]
             + [f"{m}_offline" for m in models] + ["persistence_online"])
    context = max(round(PERIODIC_CONTEXT_S / step_s), window)
    ys: list[np.ndarray] = []
    preds: dict[str, list[np.ndarray]] = {n: [] for n in names}
    uppers: dict[str, list[np.ndarray]] = {n: [] for n in names}
    statics: dict[str, list[np.ndarray]] = {n: [] for n in names}
    held: dict[str, list[np.ndarray]] = {n: [] for n in names}  # tracked bound held, every origin
    events: dict[str, list[dict]] = {n: [] for n in names}
    caps: list[float] = []
    used = 0
    origins_all = 0
    for s in series:
        n = len(s.values)
        cut = int(n * fit_fraction)
        windows, targets, origins = make_windows(s.values, window, steps)
        scored = origins >= cut
        if not scored.any():
            continue
        x, y = windows[scored], targets[scored]
        periodic = periodic_naive(s.values, origins, steps, context)
        bounded: set[str] = set()
        used += 1
        origins_all += len(targets)
        ys.append(y)
        for name, predict in models.items():
            p50, upper = predict(windows.astype(np.float32))
            offline = np.asarray(p50, dtype=np.float64)
            p50 = adapted_medians(windows, offline, targets, steps, step_s, anchor=periodic)
            preds[name].append(p50[scored])
            preds[f"{name}_offline"].append(offline[scored])
            if upper is not None:
                upper = np.asarray(upper, dtype=np.float64) + (p50 - offline)  # as planner.outlook
                floor = p50 if confidence > 0.5 else None  # as planner.outlook
                tracked = tracked_bounds(upper, targets, windows.mean(axis=1), steps, confidence, floor=floor)
                uppers[name].append(tracked[scored])
                statics[name].append(upper[scored])
                held[name].append(targets <= tracked)
                bounded.add(name)
        persistence = PersistenceBaseline(window, steps).predict(windows)
        preds["persistence_online"].append(
            adapted_medians(windows, persistence, targets, steps, step_s, anchor=periodic)[scored])
        preds["periodic_naive"].append(periodic[scored])
        history = s.values[:cut]
        for cls in BASELINES:
            preds[cls.name].append(cls(window, steps).fit(history).predict(x))
        now = x[:, -1]  # the measured power at each scored origin
        cap = float(np.percentile(now, 90)) if cap_w is None else cap_w
        caps.append(cap)
        for name in names:  # as a peak detector: the bound where a model has one, else its median
            forecast = uppers[name][-1] if name in bounded else preds[name][-1]
            events[name].append(peak_events(now, (forecast > cap).any(axis=1), cap, max(steps),
                                            round(lead_s / step_s), round(debounce_s / step_s)))
    if not ys:
        raise ValueError(f"no series is long enough to evaluate (need more than {window + max(steps)} "
                         f"steps after the first {fit_fraction:.0%})")
    y_all = np.concatenate(ys)
    metrics: dict[str, dict[str, dict]] = {}
    for name in names:
        p = np.concatenate(preds[name])
        u = np.concatenate(uppers[name]) if uppers[name] else None
        st = np.concatenate(statics[name]) if statics[name] else None
        whole = np.concatenate(held[name]).mean(axis=0) if held[name] else None
        metrics[name] = {
            f"{h:g}": summarize(y_all[:, k], p[:, k], None if u is None else u[:, k],
                                None if st is None else st[:, k])
            | {"coverage_whole_run": None if whole is None else float(whole[k])}
            for k, h in enumerate(horizons_s)
        }
    return {
        "step_s": step_s,
        "horizons_s": list(horizons_s),
        "series": used,
        "points": len(y_all),
        "origins_whole_run": origins_all,
        "metrics": metrics,
        "event_caps_w": caps,
        "events": {name: event_rates(events[name], step_s, lead_s) | {"alarm_on": "bound" if uppers[name] else "median"}
                   for name in names},
        "event_counts": events,
    }
