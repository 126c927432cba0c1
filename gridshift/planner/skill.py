"""Is the forecast worth more than persistence here, lately? Pure; the operator and the simulator
keep one ``SkillGate`` per policy and ask it every period.

A forecaster trained on other runs can be worse than saying "the next seconds look like now" on
a site it never saw; then planning on it does harm (false alarms spend the battery, missed rises go
through). The gate scores every matured forecast against persistence issued at the same time from
the same measurement:

- the median, per horizon, by absolute error against the measured load at issue time (the
  workload rungs plan on it);
- the bound the battery planned against over the next period, by the quantile (pinball) loss at
  the policy's confidence on the highest load of that period, against persistence's own bound
  (the measured load plus how far the load rose within a period at that level over the recent
  history; ``planner.outlook``). A bound that sits needlessly high loses as surely as one that
  misses.

Over the last ``keep`` matured forecasts, the model is trusted only while both its losses are no
larger than persistence's; otherwise the policy plans on persistence (the operator's reactive
mode) and says why. It comes back by itself when its recent losses fall below persistence's
again: the model's forecasts are still issued and scored while it is not used. Until
``min_scored`` forecasts have matured nothing is shown yet, and the policy stays on persistence.
The only threshold is persistence itself: nothing is tuned to a trace.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skill:
    """The gate's verdict for one period. Ratios are the model's loss over persistence's (the
    median's the worst over the horizons planned on; None: not enough matured forecasts)."""

    trusted: bool
    reason: str
    scored: int
    median_ratio: float | None = None
    bound_ratio: float | None = None


def pinball(predicted: float, actual: float, level: float) -> float:
    """Quantile loss of ``predicted`` as the ``level`` quantile of ``actual``."""
    diff = actual - predicted
    return level * diff if diff >= 0 else (level - 1.0) * diff


class SkillGate:
    """Matured forecasts scored against persistence. Feed it every period's forecasts with
    :meth:`add` and the measured series with :meth:`settle`; ask :meth:`judge`."""

    def __init__(self, level: float, keep: int = 360, min_scored: int = 36, network: str | None = None):
        if not 0.5 <= level < 1.0:
            raise ValueError(f"level must be in [0.5, 1), got {level}")
        if keep < 1 or not 1 <= min_scored <= keep:
            raise ValueError("keep and min_scored must be positive, min_scored <= keep")
        self.level = level
        self.min_scored = min_scored
        self.network = network  # the forecaster's network the scores belong to
        # (due time, horizon s, median, persistence's median)
        self.medians: deque[tuple[float, float, float, float]] = deque(maxlen=20_000)
        # (issued at, end of the period, bound, persistence's bound)
        self.bounds: deque[tuple[float, float, float, float]] = deque(maxlen=20_000)
        self.median_losses: dict[float, deque[tuple[float, float]]] = {}
        self.bound_losses: deque[tuple[float, float]] = deque(maxlen=keep)
        self.keep = keep

    def add(self, issued_at: float, load_w: float, predictions: Sequence[tuple[float, float]],
            period_s: float | None = None, bound_w: float | None = None,
            persistence_bound_w: float | None = None) -> None:
        """One period's forecasts: ``predictions`` (time, median) per horizon, and the bound the
        battery planned against until ``issued_at + period_s`` beside persistence's (both or neither)."""
        for when, median in predictions:
            self.medians.append((when, when - issued_at, median, load_w))
        if period_s is not None and bound_w is not None and persistence_bound_w is not None:
            self.bounds.append((issued_at, issued_at + period_s, bound_w, persistence_bound_w))

    def settle(self, times: np.ndarray, values: np.ndarray) -> None:
        """Score every pending forecast whose time (or period) the measured series covers."""
        if len(times) == 0:
            return
        times = np.asarray(times, float)
        values = np.asarray(values, float)
        first, last = float(times[0]), float(times[-1])
        medians: deque[tuple[float, float, float, float]] = deque(maxlen=self.medians.maxlen)
        for item in self.medians:
            when, horizon, median, persisted = item
            if when > last:
                medians.append(item)
            elif when >= first:
                actual = float(np.interp(when, times, values))
                scores = self.median_losses.setdefault(horizon, deque(maxlen=self.keep))
                scores.append((abs(median - actual), abs(persisted - actual)))
        self.medians = medians
        bounds: deque[tuple[float, float, float, float]] = deque(maxlen=self.bounds.maxlen)
        for item in self.bounds:
            start, end, bound, rival = item
            if end > last:
                bounds.append(item)
            elif start >= first:
                inside = values[(times > start) & (times <= end)]
                if len(inside):
                    highest = float(inside.max())
                    self.bound_losses.append((pinball(bound, highest, self.level), pinball(rival, highest, self.level)))
        self.bounds = bounds

    def judge(self, horizon_s: float) -> Skill:
        """Whether to plan on the model: its medians over ``horizon_s`` (every scored horizon within
        it, the shortest one when none is that short) and the battery's bound."""
        horizons = sorted(self.median_losses)
        used = [h for h in horizons if h <= horizon_s + 1e-9] or horizons[:1]
        counts = [len(self.median_losses[h]) for h in used] + ([len(self.bound_losses)] if self.bounds or
                                                               self.bound_losses else [])
        scored = min(counts) if used else 0
        if scored < self.min_scored:
            return Skill(False, f"forecast skill not yet shown: {scored} of {self.min_scored} matured forecasts "
                                "scored against persistence", scored)
        ratios = []
        for h in used:
            arr = np.array(self.median_losses[h])
            ratios.append((float(arr[:, 0].sum() / max(arr[:, 1].sum(), 1e-9)), h))
        median, at = max(ratios)
        bound = None
        if self.bound_losses:
            arr = np.array(self.bound_losses)
            bound = float(arr[:, 0].sum() / max(arr[:, 1].sum(), 1e-9))
        if median > 1.0:
            why = f"median forecast error {median:.2f}x persistence's at {at:g} s"
        elif bound is not None and bound > 1.0:
            why = f"the battery's bound has {bound:.2f}x the quantile loss of persistence's"
        else:
            return Skill(True, "", scored, median, bound)
        return Skill(False, f"{why} over the last {scored} matured forecasts: planning on persistence",
                     scored, median, bound)
