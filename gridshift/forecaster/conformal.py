"""Online calibration of the forecast upper bound (pure numpy).

The student's upper bound is calibrated offline (split conformal on the training runs' held-out
tails). On a site or a run it never saw, its coverage drifts: a workload whose phases are longer
than anything in training is under-covered, a steady one gets a needlessly wide bound, and a wide
bound makes the planner discharge the battery for peaks that never come.

:class:`BoundTracker` corrects this as the truth arrives, by online quantile tracking (the
proportional term of conformal PID control, Angelopoulos, Barber and Bates, 2023; the additive
form of adaptive conformal inference, Gibbs and Candès, 2021). Per horizon it keeps a margin, in
fractions of the window's mean power, added to the bound. When a forecast matures, a miss (the
measured value above the bound it was given) raises the margin by ``rate · level`` and a hit
lowers it by ``rate · (1 - level)``, so the long-run share of misses tends to ``1 - level``
whatever the shift, and a bound that is too wide narrows by itself. A margin stays within
``limit`` window means either way. The operator, the simulator and ``gridshift forecast
evaluate`` all run this one class.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np


class BoundTracker:
    def __init__(self, level: float, horizons: int, rate: float = 0.02, limit: float = 5.0, keep: int = 500,
                 network: str = ""):
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        if rate <= 0.0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.level = level
        self.rate = rate
        self.network = network  # which network's bound its margins correct (its sha256); opaque here
        self.limit = limit
        self.margins = np.zeros(horizons)
        self.pending: deque[tuple[float, int, float]] = deque(maxlen=16 * keep)
        self.outcomes: deque[bool] = deque(maxlen=keep)  # True: the bound held

    def adjust(self, bound: np.ndarray, unit_w: float, floor: np.ndarray | None = None) -> np.ndarray:
        """``bound`` (``[K]`` watts) lifted or lowered by the margins (``unit_w``: the window's mean
        power), never below ``floor`` (the median, for a bound above it)."""
        moved = bound + self.margins * unit_w
        return moved if floor is None else np.maximum(moved, floor)

    def add(self, bounds: Iterable[tuple[float, int, float]]) -> None:
        """Bounds as issued: (time the forecast is for, horizon index, watts)."""
        self.pending.extend(bounds)

    def settle(self, times: np.ndarray, values: np.ndarray) -> None:
        """Score every pending bound whose time the measured series covers, oldest first."""
        if len(times) == 0:
            return
        keep: deque[tuple[float, int, float]] = deque(maxlen=self.pending.maxlen)
        for when, k, bound in self.pending:
            if times[0] <= when <= times[-1]:
                self.observe(k, bound, float(np.interp(when, times, values)))
            elif when > times[-1]:
                keep.append((when, k, bound))
        self.pending = keep

    def observe(self, k: int, bound_w: float, actual_w: float) -> None:
        held = actual_w <= bound_w
        step = -self.rate * (1.0 - self.level) if held else self.rate * self.level
        self.margins[k] = float(np.clip(self.margins[k] + step, -self.limit, self.limit))
        self.outcomes.append(held)

    @property
    def coverage(self) -> float | None:
        """Share of recently matured bounds that held (None before any matured)."""
        return float(np.mean(self.outcomes)) if self.outcomes else None


def tracked_bounds(upper: np.ndarray, actual: np.ndarray, unit_w: np.ndarray, steps: tuple[int, ...],
                   level: float, floor: np.ndarray | None = None, rate: float = 0.02) -> np.ndarray:
    """Replay :class:`BoundTracker` over consecutive forecast origins (one per step), as the
    operator would have run it: ``upper``, ``actual`` and ``floor`` are ``[N, K]``, ``unit_w`` is
    ``[N]`` (each window's mean power) and horizon ``k`` of origin ``i`` matures at origin
    ``i + steps[k]``. Returns the bounds as issued, ``[N, K]``."""
    tracker = BoundTracker(level, len(steps), rate)
    issued = np.empty_like(upper, dtype=np.float64)
    due: dict[int, list[tuple[int, float, float]]] = {}
    for i in range(len(upper)):
        for k, bound, truth in due.pop(i, ()):
            tracker.observe(k, bound, truth)
        issued[i] = tracker.adjust(upper[i], float(unit_w[i]), None if floor is None else floor[i])
        for k, s in enumerate(steps):
            due.setdefault(i + s, []).append((k, float(issued[i, k]), float(actual[i, k])))
    return issued
