"""Forecast error metrics and the windowing shared by training and evaluation (pure numpy)."""

from __future__ import annotations

from typing import Any

import numpy as np


def make_windows(values: np.ndarray, window: int, horizon_steps: tuple[int, ...] | list[int],
                 origins: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``values`` into (inputs ``[N, window]``, targets ``[N, K]``, origin indices ``[N]``).

    The origin ``t`` is the index of the last input sample; target ``k`` is
    ``values[t + horizon_steps[k]]``. Without ``origins``, every origin that has a full window
    and every target is used.
    """
    v = np.asarray(values, dtype=np.float64)
    hs = np.asarray(horizon_steps, dtype=np.int64)
    last = len(v) - 1 - int(hs.max())
    if origins is None:
        origins = np.arange(window - 1, last + 1)
    origins = np.asarray(origins, dtype=np.int64)
    origins = origins[(origins >= window - 1) & (origins <= last)]
    if len(origins) == 0:
        return np.zeros((0, window)), np.zeros((0, len(hs))), origins
    idx = origins[:, None] + np.arange(-window + 1, 1)[None, :]
    return v[idx], v[origins[:, None] + hs[None, :]], origins


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(yhat)) ** 2)))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0-200); points where both are zero count as zero error."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    denom = np.abs(y) + np.abs(yhat)
    ratio = np.divide(2 * np.abs(y - yhat), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100 * np.mean(ratio))


def coverage(y: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of actual values at or below the upper bound."""
    return float(np.mean(np.asarray(y) <= np.asarray(upper)))


def pinball(y: np.ndarray, q_pred: np.ndarray, q: float) -> float:
    diff = np.asarray(y) - np.asarray(q_pred)
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def summarize(y: np.ndarray, yhat: np.ndarray, upper: np.ndarray | None = None,
              static_upper: np.ndarray | None = None) -> dict[str, float | None]:
    """The metric block of one model at one horizon, in the units of ``y`` (watts). ``upper`` is the
    bound as the operator uses it (online-tracked), ``static_upper`` the offline-calibrated one;
    ``bound_gap_pct_of_mean`` says how far above the truth the bound sits on average."""
    m = mae(y, yhat)
    mean = float(np.mean(np.abs(y))) if len(y) else 0.0

    def pct(x: float) -> float | None:
        return 100 * x / mean if mean > 0 else None

    return {
        "mae": m,
        "rmse": rmse(y, yhat),
        "smape": smape(y, yhat),
        "mae_pct_of_mean": pct(m),
        "coverage": coverage(y, upper) if upper is not None else None,
        "bound_gap_pct_of_mean": pct(float(np.mean(upper - y))) if upper is not None else None,
        "coverage_static": coverage(y, static_upper) if static_upper is not None else None,
    }


def onsets(values: np.ndarray, cap: float, debounce: int) -> np.ndarray:
    """Indices where ``values`` crosses above ``cap`` after at least ``debounce`` samples at or
    below it (a dip shorter than that belongs to the same peak); the first sample is never one."""
    above = np.asarray(values) > cap
    out, last_above = [], -(10**9)
    for i in np.flatnonzero(above):
        if i > 0 and not above[i - 1] and i - last_above > debounce:
            out.append(int(i))
        last_above = int(i)
    return np.asarray(out, dtype=np.int64)


def alarm_episodes(alarm: np.ndarray, debounce: int) -> list[tuple[int, int]]:
    """``(first, last)`` index of each run of ``alarm``, runs less than ``debounce`` apart merged."""
    episodes: list[tuple[int, int]] = []
    for i in np.flatnonzero(np.asarray(alarm, dtype=bool)):
        if episodes and i - episodes[-1][1] <= debounce:
            episodes[-1] = (episodes[-1][0], int(i))
        else:
            episodes.append((int(i), int(i)))
    return episodes


def peak_events(values: np.ndarray, alarm: np.ndarray, cap: float, horizon: int, lead: int,
                debounce: int) -> dict[str, Any]:
    """Counts of a forecast used as a peak detector over consecutive samples ``values`` with the
    ``alarm`` raised at each (the forecast said the cap would be crossed within ``horizon``
    samples). An onset (:func:`onsets`) is flagged when an alarm was raised between ``horizon`` and
    ``lead`` samples before it; its lead is how long before it the earliest alarm within
    ``horizon`` came (0 if none). An alarm episode is false when no sample crosses the cap from its
    start to ``horizon`` samples after its end. Sums, so that series pool; see :func:`event_rates`."""
    values, alarm = np.asarray(values, dtype=np.float64), np.asarray(alarm, dtype=bool)
    above = values > cap
    found = onsets(values, cap, debounce)
    leads = []
    for i in found:
        before = np.flatnonzero(alarm[max(0, i - horizon):i])
        leads.append(0 if len(before) == 0 else i - (max(0, i - horizon) + int(before[0])))
    flagged = sum(1 for i in found if alarm[max(0, i - horizon):max(0, i - lead + 1)].any())
    false = sum(1 for first, last in alarm_episodes(alarm, debounce) if not above[first:last + horizon + 1].any())
    return {"onsets": len(found), "flagged": flagged, "leads": [float(x) for x in leads], "false_alarms": false,
            "alarm_samples": int(alarm.sum()), "samples": len(values)}


def event_rates(counts: list[dict[str, Any]], step_s: float, lead_s: float) -> dict[str, float | int | None]:
    """Pooled rates of :func:`peak_events` counts: the share of onsets flagged ``lead_s`` or more
    ahead, the median lead (seconds), false alarms per 10 minutes and the share of time in alarm."""
    n = sum(c["onsets"] for c in counts)
    samples = sum(c["samples"] for c in counts)
    leads = [x for c in counts for x in c["leads"]]
    minutes = samples * step_s / 60.0
    return {
        "onsets": n,
        "lead_s": lead_s,
        "flagged_ahead": sum(c["flagged"] for c in counts) / n if n else None,
        "median_lead_s": float(np.median(leads)) * step_s if leads else None,
        "false_alarms_per_10min": 10.0 * sum(c["false_alarms"] for c in counts) / minutes if minutes else None,
        "time_in_alarm": sum(c["alarm_samples"] for c in counts) / samples if samples else None,
    }
