"""Online adaptation of the median forecast to the site it runs on (pure numpy).

A network trained on other runs knows how GPU power moves in general, not this job's rhythm: a
checkpoint every 70 s on one run, every 250 s on the next. On the H100 traces a student trained on
four runs forecast the fifth worse than persistence at 10 s, while a linear model fitted on that
run's own first minutes did better. :class:`OnlineAdapter` gives the deployed forecaster that
local knowledge without retraining anything: per horizon it fits, by exponentially weighted ridge
regression on the forecasts that have matured, the change from the newest sample as

    bias + gain · (network's change) + anchor · (periodic naive's change)
         + Σ_lag a_lag · (window[-1 - lag] - window[-1])

in fractions of the window's mean power, with lags every ``stride_s`` across the window. The
anchor is the period-aware seasonal naive (:func:`~gridshift.forecaster.baselines.periodic_naive`:
the job's period re-estimated at every origin on the last ``context_s`` seconds, persistence where
none is clear), so a period longer than the network's window, or one that drifts, is still one
weight away. The ridge pulls toward the network's own forecast (gain 1, everything else 0), so an
adapter that has seen nothing, or nothing informative, returns the network's median unchanged;
the gain and the anchor are penalised ten times less than the rest, so within minutes the site
decides how much of each to trust.

How fast to forget depends on the site: one job's rhythm changes within minutes, an aggregate of
hundreds keeps its shape for hours. So it fits one regression per memory (``half_lives_s``: older
forecasts count ``0.5 ** (age / half_life)``). Beside the memories stand two candidates that forecast
alone, the periodic naive and persistence, and per horizon it forecasts with the candidate whose
recent absolute error is lowest (each is scored on the forecast it issued at the time, decayed over
``score_half_life_s``): on a run where neither the network nor a regression holds, the adapted
median is soon no worse than the better of those two. The forecast stays inside the window's range.
Only the median is learned: where it runs, the upper levels move with it (the network's calibrated
spread above the adapted median), and ``BoundTracker`` tracks that bound's coverage as before.

The operator, the simulator and ``gridshift forecast evaluate`` run this one class. It learns from
every origin of the measured series, one per step, not only from the forecasts the control
period issued: ``learn`` takes the newest history and the network, ``adjust`` adapts a forecast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gridshift.forecaster.baselines import PERIODIC_CONTEXT_S, periodic_naive
from gridshift.forecaster.metrics import make_windows

DEFAULT_HALF_LIVES_S = (60.0, 600.0, 3600.0)
DEFAULT_RIDGE = 3.0
DEFAULT_STRIDE_S = 5.0
DEFAULT_SCORE_HALF_LIFE_S = 1800.0
GAIN_RIDGE_FRACTION = 0.1
_GAIN, _ANCHOR, _LAGGED = 1, 2, 3  # regressor columns: bias, network, periodic naive, then the lags
EXPERTS = ("periodic naive", "persistence")  # candidates beside the memories, forecasting alone


class OnlineAdapter:
    """The adapter of one forecaster on one site: ``window`` samples of ``step_s`` seconds in,
    medians at ``horizons_s`` out (the model's own metadata)."""

    def __init__(self, window: int, horizons_s: tuple[float, ...], step_s: float,
                 half_lives_s: tuple[float, ...] = DEFAULT_HALF_LIVES_S, ridge: float = DEFAULT_RIDGE,
                 stride_s: float = DEFAULT_STRIDE_S, score_half_life_s: float = DEFAULT_SCORE_HALF_LIFE_S,
                 context_s: float = PERIODIC_CONTEXT_S, network: str = ""):
        if not half_lives_s or min(half_lives_s) <= 0:
            raise ValueError(f"half_lives_s must be positive seconds, got {half_lives_s}")
        if score_half_life_s <= 0:
            raise ValueError(f"score_half_life_s must be positive, got {score_half_life_s}")
        if ridge <= 0:
            raise ValueError(f"ridge must be positive, got {ridge}")
        stride = max(1, round(stride_s / step_s))
        self.window = window
        self.context = max(window, round(context_s / step_s))  # samples the periodic anchor looks back
        self.step_s = step_s
        self.network = network  # which network's medians it learned to correct (its sha256); opaque here
        self.horizons_s = tuple(float(h) for h in horizons_s)
        self.steps = tuple(round(h / step_s) for h in self.horizons_s)
        self.half_lives_s = np.asarray(half_lives_s, dtype=np.float64)
        self.score_half_life_s = score_half_life_s
        self.lags = np.arange(stride, window, stride)
        m, k, d = len(self.half_lives_s), len(self.horizons_s), _LAGGED + len(self.lags)
        self.prior = np.zeros(d)
        self.prior[_GAIN] = 1.0
        self.penalty = np.full(d, ridge)
        # Two numbers, learned fast: how far to trust the network here, and the job's period.
        self.penalty[[_GAIN, _ANCHOR]] = GAIN_RIDGE_FRACTION * ridge
        self.gram = np.zeros((m, k, d, d))
        self.moment = np.zeros((m, k, d))
        self.coefs = np.tile(self.prior, (m, k, 1))
        # Decayed sum of each candidate's absolute error, in window means: the M memories, then the
        # periodic naive and persistence alone (so the adapted forecast is never long worse than either).
        self.errors = np.zeros((m + len(EXPERTS), k))
        self.seen = np.full(k, -np.inf)  # origin time of the newest matured forecast per horizon
        self.issued: dict[float, np.ndarray] = {}  # origin time: each candidate's forecast [C, K] from it
        self.walked = -np.inf  # time of the newest sample learn() has walked past
        self.learned = 0  # matured (origin, horizon) pairs learned from

    @property
    def choice(self) -> list[str]:
        """Per horizon, the candidate it forecasts with now: a memory (``"10 min memory"``), the
        ``"periodic naive"`` or ``"persistence"``."""
        names = [f"{h / 60:g} min memory" if h < 3600 else f"{h / 3600:g} h memory" for h in self.half_lives_s]
        return [(names + list(EXPERTS))[c] for c in np.argmin(self.errors, axis=0)]

    def _candidates(self, z: np.ndarray) -> np.ndarray:
        """``[N, C, K]`` each candidate's change from regressors ``z`` ``[N, K, d]``: the memories'
        regressions, then the periodic naive's change, then persistence's (none)."""
        memories = np.einsum("mkd,nkd->nmk", self.coefs, z)
        return np.concatenate([memories, z[:, None, :, _ANCHOR], np.zeros_like(z[:, None, :, 0])], axis=1)

    def features(self, windows: np.ndarray, p50: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """``[N, K, d]`` regressors of ``[N, window]`` windows, their ``[N, K]`` network medians and
        ``[N, K]`` periodic-naive forecasts."""
        last = windows[:, -1:]
        unit = np.maximum(windows.mean(axis=1, keepdims=True), 1.0)
        lagged = (windows[:, -1 - self.lags] - last) / unit
        n, k = p50.shape
        z = np.empty((n, k, _LAGGED + len(self.lags)))
        z[:, :, 0] = 1.0
        z[:, :, _GAIN] = (p50 - last) / unit
        z[:, :, _ANCHOR] = (anchor - last) / unit
        z[:, :, _LAGGED:] = lagged[:, None, :]
        return z

    def anchors(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """``[N, K]`` periodic-naive forecasts from ``origins`` (indices) of the series ``values``."""
        return periodic_naive(values, origins, self.steps, self.context)

    def predict(self, windows: np.ndarray, p50: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """The adapted ``[N, K]`` medians of ``[N, window]`` windows, the network's ``[N, K]``
        medians and the ``[N, K]`` periodic-naive forecasts from the same origins."""
        last = windows[:, -1:]
        unit = np.maximum(windows.mean(axis=1, keepdims=True), 1.0)
        best = np.argmin(self.errors, axis=0)
        change = self._candidates(self.features(windows, p50, anchor))[:, best, np.arange(len(best))]
        clipped: np.ndarray = np.clip(last + change * unit, windows.min(axis=1, keepdims=True),
                                      windows.max(axis=1, keepdims=True))
        return clipped

    def adjust(self, history: np.ndarray, p50: np.ndarray) -> np.ndarray:
        """``p50`` (``[K]`` watts, the network's median from the last ``window`` samples of
        ``history``) adapted; the periodic anchor reads up to ``context`` samples of ``history``."""
        h = np.asarray(history, dtype=np.float64)[-self.context:]
        anchor = self.anchors(h, np.array([len(h) - 1]))
        medians: np.ndarray = self.predict(h[None, -self.window:], np.asarray(p50, dtype=np.float64)[None, :],
                                           anchor)[0]
        return medians

    def learn(self, times: np.ndarray, values: np.ndarray, medians: Callable[[np.ndarray], np.ndarray]) -> int:
        """Learn from the measured series (regular ``step_s`` samples) past where the last call
        stopped: every origin whose horizon matured since then is learned, each memory scored on
        the forecast it issued from that origin; then each memory issues its forecast from every
        new origin, to be scored when that matures. ``medians`` maps ``[N, window]`` windows to the
        network's ``[N, K]`` medians. Called once per step this is exactly :func:`adapted_medians`;
        once per control period, the forecasts issued within a period share its weights.
        Returns how many (origin, horizon) pairs it learned from."""
        times = np.asarray(times, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        n = len(times)
        first = max(self.window - 1, int(np.searchsorted(times, self.walked, side="right")))
        if first >= n:
            return 0
        low = max(self.window - 1, first - max(self.steps))
        windows, _, _ = make_windows(values, self.window, [0], np.arange(low, n))
        z = self.features(windows, np.asarray(medians(windows), dtype=np.float64),
                          self.anchors(values, np.arange(low, n)))
        last = windows[:, -1]
        unit = np.maximum(windows.mean(axis=1), 1.0)
        before = self.learned
        for k, s in enumerate(self.steps):
            rows = np.arange(max(first - s, low), n - s) - low  # origins whose horizon k matured since
            self._learn(k, z[rows, k], (values[rows + low + s] - last[rows]) / unit[rows], times[rows + low])
        self._issue(times[first:n], z[first - low:])
        self.issued = {t: v for t, v in self.issued.items() if t >= times[0]}
        return self.learned - before

    def _learn(self, k: int, z: np.ndarray, change: np.ndarray, when: np.ndarray) -> None:
        """Matured forecasts at horizon ``k``, oldest first: regressors ``z`` ``[R, d]``, the
        measured ``change`` ``[R]`` (window means) and their origin times ``when`` ``[R]``."""
        if len(when) == 0:
            return
        fresh = self._candidates(z[:, None, :].repeat(len(self.steps), axis=1))[:, :, k]  # [R, C]
        issued = np.stack([self.issued[t][:, k] if t in self.issued else fresh[r]
                           for r, t in enumerate(when)], axis=1)  # [C, R]: what each candidate forecast then
        newest = float(when[-1])
        age = max(newest - self.seen[k], 0.0)  # inf at first: nothing to decay
        behind = newest - when  # [R]
        score = 0.5 ** (behind / self.score_half_life_s)
        self.errors[:, k] = self.errors[:, k] * 0.5 ** (age / self.score_half_life_s) \
            + (np.abs(change[None, :] - issued) * score[None, :]).sum(axis=1)
        weight = 0.5 ** (behind[None, :] / self.half_lives_s[:, None])  # [M, R]
        decay = 0.5 ** (age / self.half_lives_s)  # [M]
        self.gram[:, k] = self.gram[:, k] * decay[:, None, None] + np.einsum("mr,rd,re->mde", weight, z, z)
        self.moment[:, k] = self.moment[:, k] * decay[:, None] + (weight * change[None, :]) @ z
        self.seen[k] = newest
        a = self.gram[:, k] + np.diag(self.penalty)
        rhs = self.moment[:, k] - self.gram[:, k] @ self.prior
        self.coefs[:, k] = self.prior + np.linalg.solve(a, rhs[..., None])[..., 0]
        if k == self.steps.index(max(self.steps)):
            for t in when:
                self.issued.pop(float(t), None)  # every horizon of that origin has matured
        self.learned += len(when)

    def _issue(self, when: np.ndarray, z: np.ndarray) -> None:
        """Each memory's forecast from the origins at ``when`` (regressors ``z``, ``[C, K, d]``)."""
        for t, forecast in zip(when, self._candidates(z), strict=True):
            self.issued[float(t)] = forecast
        self.walked = float(when[-1])


def adapted_medians(windows: np.ndarray, p50: np.ndarray, actual: np.ndarray, steps: tuple[int, ...],
                    step_s: float, anchor: np.ndarray | None = None, **options: Any) -> np.ndarray:
    """Replay :class:`OnlineAdapter` over consecutive forecast origins (one per step), as the
    operator runs it: ``windows`` ``[N, window]``, ``p50``, ``actual`` and ``anchor`` (the periodic
    naive's forecasts from the same origins, :meth:`OnlineAdapter.anchors` of the whole series)
    ``[N, K]``; horizon ``k`` of origin ``i`` is learned from at origin ``i + steps[k]``. Without
    ``anchor`` the anchor is persistence, which adds nothing. Returns the medians as issued."""
    adapter = OnlineAdapter(windows.shape[1], tuple(s * step_s for s in steps), step_s, **options)
    windows = np.asarray(windows, dtype=np.float64)
    p50 = np.asarray(p50, dtype=np.float64)
    anchor = (np.repeat(windows[:, -1:], p50.shape[1], axis=1) if anchor is None
              else np.asarray(anchor, dtype=np.float64))
    z = adapter.features(windows, p50, anchor)
    last = windows[:, -1]
    unit = np.maximum(windows.mean(axis=1), 1.0)
    issued = np.empty_like(p50)
    for i in range(len(p50)):
        for k, s in enumerate(steps):
            if i - s >= 0:
                j = i - s
                adapter._learn(k, z[j:j + 1, k], np.array([(actual[j, k] - last[j]) / unit[j]]), np.array([j * step_s]))
        adapter._issue(np.array([i * step_s]), z[i:i + 1])
        issued[i] = adapter.predict(windows[i:i + 1], p50[i:i + 1], anchor[i:i + 1])[0]
    return issued
