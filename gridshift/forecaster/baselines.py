"""The baselines a practitioner tries first, fitted on a series' history (pure numpy).

Each baseline has ``fit(train_values)`` (which may be a no-op) and ``predict(windows)`` taking
``[N, window]`` watts and returning ``[N, K]`` watts at the configured horizon steps.
"""

from __future__ import annotations

import numpy as np

from gridshift.forecaster.metrics import mae, make_windows


class Baseline:
    name = "baseline"

    def __init__(self, window: int, horizon_steps: tuple[int, ...]):
        self.window = window
        self.horizon_steps = tuple(horizon_steps)

    def fit(self, values: np.ndarray) -> Baseline:
        return self

    def predict(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class PersistenceBaseline(Baseline):
    """The last value, at every horizon."""

    name = "persistence"

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return np.repeat(windows[:, -1:], len(self.horizon_steps), axis=1)


class MovingAverage(Baseline):
    """Mean of the last ``m`` values; ``m`` chosen on the training part by MAE."""

    name = "moving_average"
    candidates = (3, 5, 10, 20, 30, 60)

    def __init__(self, window: int, horizon_steps: tuple[int, ...]):
        super().__init__(window, horizon_steps)
        self.m = min(10, window)

    def fit(self, values: np.ndarray) -> MovingAverage:
        x, y, _ = make_windows(values, self.window, self.horizon_steps)
        if len(x):
            scores = {}
            for m in (c for c in self.candidates if c <= self.window):
                pred = np.repeat(x[:, -m:].mean(axis=1, keepdims=True), y.shape[1], axis=1)
                scores[m] = mae(y, pred)
            self.m = min(scores, key=lambda m: scores[m])
        return self

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return np.repeat(windows[:, -self.m:].mean(axis=1, keepdims=True), len(self.horizon_steps), axis=1)


def estimate_period(values: np.ndarray, max_lag: int, min_lag: int = 3) -> int | None:
    """The lag of the highest autocorrelation peak after the autocorrelation first turns
    negative (so that short-lag smoothness is not mistaken for a season), or None
    (:func:`periods` on one series)."""
    v = np.asarray(values, dtype=np.float64)
    max_lag = min(max_lag, len(v) // 2)
    if max_lag <= min_lag:
        return None
    period = int(periods(autocorrelations(v[None, :], max_lag), max_lag, min_lag)[0])
    return period or None


class SeasonalNaive(Baseline):
    """``y[t+h] = y[t+h-P*ceil(h/P)]`` with the period ``P`` estimated from the training part
    (see :func:`estimate_period`); without a clear period it repeats the window's length."""

    name = "seasonal_naive"

    def __init__(self, window: int, horizon_steps: tuple[int, ...]):
        super().__init__(window, horizon_steps)
        self.period = window

    def fit(self, values: np.ndarray) -> SeasonalNaive:
        self.period = estimate_period(values, self.window) or self.window
        return self

    def predict(self, windows: np.ndarray) -> np.ndarray:
        cols = []
        for h in self.horizon_steps:
            back = self.period * int(np.ceil(h / self.period)) - h  # steps before the origin
            cols.append(windows[:, -1 - back])
        return np.stack(cols, axis=1)


class DLinear(Baseline):
    """DLinear (Zeng et al., AAAI 2023): the window is split into a moving-average trend and a
    remainder, each mapped to the horizons by its own linear layer. Fitted by ridge least
    squares on the training part, on windows expressed relative to their last value; the ridge
    penalty is relative to the features' own scale (``ridge`` x mean of the Gram diagonal)."""

    name = "dlinear"

    def __init__(self, window: int, horizon_steps: tuple[int, ...], kernel: int = 25, ridge: float = 0.1):
        super().__init__(window, horizon_steps)
        self.kernel = kernel
        self.ridge = ridge
        self.coef: np.ndarray | None = None

    def _features(self, windows: np.ndarray) -> np.ndarray:
        x = windows - windows[:, -1:]
        pad = self.kernel // 2
        padded = np.concatenate([np.repeat(x[:, :1], pad, axis=1), x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
        csum = np.cumsum(np.pad(padded, ((0, 0), (1, 0))), axis=1)
        trend = (csum[:, self.kernel:] - csum[:, :-self.kernel])[:, : x.shape[1]] / self.kernel
        remainder = x - trend
        return np.concatenate([trend, remainder, np.ones((len(x), 1))], axis=1)

    def fit(self, values: np.ndarray) -> DLinear:
        x, y, _ = make_windows(values, self.window, self.horizon_steps)
        if len(x) == 0:
            self.coef = None
            return self
        f = self._features(x)
        target = y - x[:, -1:]
        gram = f.T @ f
        gram = gram + self.ridge * float(np.mean(np.diag(gram))) * np.eye(f.shape[1])
        self.coef = np.linalg.solve(gram, f.T @ target)
        return self

    def predict(self, windows: np.ndarray) -> np.ndarray:
        if self.coef is None:
            return PersistenceBaseline(self.window, self.horizon_steps).predict(windows)
        predicted: np.ndarray = windows[:, -1:] + self._features(windows) @ self.coef
        return predicted


BASELINES: tuple[type[Baseline], ...] = (PersistenceBaseline, SeasonalNaive, MovingAverage, DLinear)


PERIODIC_CONTEXT_S = 300.0
PERIODIC_MIN_LAG = 3
_CHUNK = 2048


def autocorrelations(contexts: np.ndarray, max_lag: int) -> np.ndarray:
    """``[N, max_lag + 1]`` biased sample autocorrelations (lag 0 is 1; every lag divided by ``C``,
    which damps long lags and so spurious peaks there) of ``[N, C]`` contexts, by FFT; a flat
    context has 0 at every lag > 0. Times ``C / (C - lag)`` they are the unbiased ones, under which
    an exact repeat ``lag`` samples back scores 1 at any lag."""
    x = contexts - contexts.mean(axis=1, keepdims=True)
    n = x.shape[1]
    spectrum = np.fft.rfft(x, n=2 * n, axis=1)
    acov = np.fft.irfft(np.abs(spectrum) ** 2, n=2 * n, axis=1)[:, :max_lag + 1]
    zero = acov[:, :1]
    return np.divide(acov, zero, out=np.zeros_like(acov), where=zero > 1e-12 * max(float(zero.max()), 1.0))


def periods(acf: np.ndarray, max_lag: int, min_lag: int = PERIODIC_MIN_LAG) -> np.ndarray:
    """``[N]`` period of each row of autocorrelations (0 where none is clear): the lag of the highest
    peak up to ``max_lag`` after the autocorrelation first turns negative, if that peak is positive."""
    lags = np.arange(acf.shape[1])
    negative = (acf < 0) & (lags >= 1)
    turned = negative.any(axis=1)
    first = np.maximum(np.where(turned, np.argmax(negative, axis=1), max_lag + 1), min_lag)
    searchable = (lags[None, :] >= first[:, None]) & (lags[None, :] <= max_lag)
    peak = np.argmax(np.where(searchable, acf, -np.inf), axis=1)
    clear = turned & (first < max_lag) & (acf[np.arange(len(acf)), peak] > 0)
    return np.where(clear, peak, 0)


def periodic_naive(values: np.ndarray, origins: np.ndarray, horizon_steps: tuple[int, ...] | list[int],
                   context: int) -> np.ndarray:
    """The period-aware seasonal naive, causally at each origin: ``[N, K]`` forecasts of
    ``values[origin + h]``.

    At each origin the period ``P`` is estimated on the last ``context`` samples (fewer at a
    series' start), by autocorrelation (:func:`periods`, lags up to half the context). Horizon
    ``h`` then repeats the sample one whole number of periods back, ``values[t + h - d]`` with
    ``d = P * ceil(h / P)``, when the context says that sample is the better guess, i.e. its
    (unbiased) autocorrelation at lag ``d`` exceeds the one at lag ``h`` (under stationarity a
    predictor ``d`` samples back has mean squared error ``2 var (1 - acf(d))``); otherwise, or with
    no clear period, it is persistence. No threshold: the rule is the same for every series.
    """
    v = np.asarray(values, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    hs = np.asarray(horizon_steps, dtype=np.int64)
    out = np.repeat(v[origins][:, None], len(hs), axis=1)
    for length in np.unique(np.minimum(origins + 1, context)):
        rows = np.flatnonzero(np.minimum(origins + 1, context) == length)
        max_lag = int(length) // 2
        if max_lag <= PERIODIC_MIN_LAG:
            continue
        for chunk in np.array_split(rows, max(1, len(rows) // _CHUNK)):
            t = origins[chunk]
            ctx = v[t[:, None] + np.arange(-int(length) + 1, 1)[None, :]]
            top = min(int(length) - 1, max_lag + int(hs.max()))
            biased = autocorrelations(ctx, top)
            p = periods(biased, max_lag)
            acf = biased * (int(length) / (int(length) - np.arange(top + 1)))[None, :]  # unbiased
            for k, h in enumerate(hs):
                d = np.where(p > 0, p * np.ceil(h / np.maximum(p, 1)).astype(np.int64), h)
                d = np.minimum(d, top)
                better = (p > 0) & (acf[np.arange(len(t)), d] > acf[np.arange(len(t)), min(int(h), top)])
                out[chunk, k] = np.where(better, v[t + h - d], out[chunk, k])
    return out
