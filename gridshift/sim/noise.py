"""A forecaster that knows nothing: the do-no-harm yardstick.

``NoiseForecaster`` has the runtime forecaster's contract (``meta``, ``student.sha256``,
``predict``) but its medians are the newest sample plus Gaussian noise of the window's own spread
(persistence with an error of its own), and its upper levels lie a random distance above them. A
policy run on it must still do no worse than reactive control. Alone it never beats persistence;
wrapped in the operator's online adapter (as the simulator runs every model) the adapter's own
regression on the window can, and the skill gate (``planner.skill``) then trusts the pair by its
score. Seeded, so a run is repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridshift.forecaster.runtime import Forecast, Forecaster, ModelMeta


@dataclass(frozen=True)
class _Fingerprint:
    sha256: str


class NoiseForecaster(Forecaster):
    """Pure noise with the shape of a real model: ``window`` samples in, ``horizons_s`` out, upper
    levels at ``quantiles``."""

    def __init__(self, seed: int = 0, window: int = 120, horizons_s: tuple[float, ...] = (5.0, 10.0, 30.0),
                 quantiles: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)):
        self.meta = ModelMeta(step_s=1.0, window=window, horizons_s=horizons_s, quantiles=quantiles,
                              files={}, raw={"kind": "noise", "seed": seed})
        self.student = _Fingerprint(f"noise-{seed}")  # type: ignore[assignment]
        self.rng = np.random.default_rng(seed)

    def predict(self, windows: np.ndarray, network: str = "student") -> Forecast:
        arr = np.atleast_2d(np.asarray(windows, dtype=np.float64))
        n, k, q = arr.shape[0], len(self.meta.horizons_s), len(self.meta.quantiles)
        level = arr[:, -1:]
        spread = arr.std(axis=1, keepdims=True) + 0.02 * np.abs(level)
        p50 = level + spread * self.rng.standard_normal((n, k))
        steps = np.cumsum(np.abs(self.rng.standard_normal((n, q, k))), axis=1)  # ascending in the level
        upper = p50[:, None, :] + spread[:, :, None] * steps
        return Forecast(self.meta.horizons_s, self.meta.quantiles, p50.astype(np.float32), upper.astype(np.float32))
