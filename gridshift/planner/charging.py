"""Charge planning, pure: how much energy the battery should hold for the next peak, and how fast
to put it back.

The battery is charged only off-peak, only into headroom below the restore threshold that both the
forecast and the load now plus the largest rise within a period seen over the last ``LOOKBACK_S``
leave (``charge_ceiling``; restored workloads come first; a charge is optional load, so it does not
bet on a forecast dip), never faster than its charge
rating (or the policy's limit), and not for ``dwell_s`` after it last discharged, which keeps it
from cycling on a load that hovers around the threshold. The other way round the cap wins: a
forecast peak, or measured grid power (load plus the charge) at the trigger, stops a charge at once
(the simulator showed a dwell there letting whole bursts through).

The target state of charge is the reserve plus the energy of the largest recent peak above the
trigger (``PeakEnergyTracker``) with a margin, over the usable capacity (nameplate times state of
health); with no peak seen yet, the ceiling. A policy can also fix it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PEAK_MARGIN = 1.25
# A charge must leave room for the largest rise within a period that the load showed over a span that
# holds several of a training job's checkpoint and evaluation cycles, not just the forecast horizon: a
# job's periodic rise the forecast missed then cannot meet a charge at the cap before the charge stops.
# (Restores are held back by the measured grid power instead.)
LOOKBACK_S = 600.0


@dataclass(frozen=True)
class ChargeRule:
    off_peak: bool           # the tariff at the period's time
    target_fraction: float   # state of charge to hold for the next peak
    max_charge_w: float | None = None
    dwell_s: float = 300.0


def charge_target(reserve_fraction: float, peak_energy_wh: float | None, usable_wh: float,
                  ceiling: float = 1.0) -> float:
    """Reserve plus the next peak's energy (with margin) over usable capacity, at most ``ceiling``."""
    if peak_energy_wh is None or usable_wh <= 0:
        return ceiling
    return min(ceiling, reserve_fraction + PEAK_MARGIN * peak_energy_wh / usable_wh)


def dwell_marks(previous_w: float, new_w: float) -> tuple[bool, bool]:
    """(charged, discharged): whether a change of setpoint from ``previous_w`` to ``new_w`` (+ discharges)
    ends or starts a charge or a discharge, so that its time is the new start of the dwell."""
    return previous_w < 0 or new_w < 0, previous_w > 0 or new_w > 0


def charge_ceiling(values: Sequence[float] | np.ndarray, step_s: float, period_s: float) -> float:
    """What a charge must fit under (``PlanInput.recent_peak_w``): the load now plus the largest rise
    within a period and a sample that the load showed over the last ``LOOKBACK_S``. A charge stops
    at the next period once measured grid power reaches the trigger, so it only has to leave room
    for what the load can do before then; the highest load of the whole lookback kept every charge
    out of a busy site's troughs, and its battery, never refilled, ran out before the evening peaks.
    With less history than the lookback holds, the highest load measured."""
    span = max(1, math.ceil((period_s + step_s) / step_s))
    n = max(1, math.ceil(LOOKBACK_S / step_s))
    tail = np.asarray(values[-n:], dtype=float)
    tail = tail[np.isfinite(tail)]
    if len(tail) == 0:
        return 0.0
    if len(tail) < n:
        return float(tail.max())
    return float(tail[-1]) + rise_quantile(tail, span, 1.0)


def rise_quantile(values: np.ndarray, span: int, level: float, min_origins: int = 30) -> float:
    """The ``level`` quantile, over every origin of ``values``, of how far the highest of the next
    ``span`` samples rose above the origin's (0 with fewer than ``min_origins`` origins)."""
    arr = np.asarray(values, dtype=float)
    if span < 1 or len(arr) < span + min_origins:
        return 0.0
    ahead = np.lib.stride_tricks.sliding_window_view(arr[1:], span).max(axis=1)
    return max(0.0, float(np.quantile(ahead - arr[:len(ahead)], level)))


def hours_to_charge(soc: float, target: float, usable_wh: float, watts: float) -> float:
    if watts <= 0:
        return math.inf
    return max(0.0, target - soc) * usable_wh / watts


class PeakEnergyTracker:
    """Energy above the trigger in each peak episode of the observed load, kept for ``window_s``."""

    def __init__(self, window_s: float = 86_400.0):
        self.window_s = window_s
        self.episodes: deque[tuple[float, float]] = deque()  # (end time, watt-hours)
        self.current_wh = 0.0
        self.last_t: float | None = None

    def observe(self, t: float, load_w: float, trigger_w: float) -> None:
        dt = 0.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        if load_w > trigger_w:
            self.current_wh += (load_w - trigger_w) * dt / 3600.0
        elif self.current_wh > 0:
            self.episodes.append((t, self.current_wh))
            self.current_wh = 0.0
        while self.episodes and t - self.episodes[0][0] > self.window_s:
            self.episodes.popleft()

    def largest_wh(self) -> float | None:
        """The largest episode in the window (an ongoing one included), or None if there was none."""
        values = [wh for _, wh in self.episodes] + ([self.current_wh] if self.current_wh > 0 else [])
        return max(values) if values else None
