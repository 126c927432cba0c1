"""Forecast error metrics and the windowing shared by training and evaluation (pure numpy)."""

from __future__ import annotations

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
