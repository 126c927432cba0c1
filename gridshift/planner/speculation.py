"""Speculative discharge, budgeted. Pure; the operator and the simulator share it.

Reactive control discharges only what the measured load already asks for (load above the
trigger). A forecast-driven battery also discharges *ahead* of the load, for a peak the bound
says may come: that part is speculative, and on a site the model never saw its false alarms can
spend the battery that the real peaks later need (one unseen H100 run drained a 40 kWh battery to
its reserve by hour 18, after which every evening peak went through).

So the battery keeps back what reactive control would need: the energy the measured load drew
above the trigger over the last day (``ReactiveNeed``), with the same margin the charge target
uses. Only energy above the reserve *and* that need may be spent ahead of the load; once it is
gone the battery follows the measured load, exactly as reactive control does, until a recharge
or a quieter day gives it room again. Discharge the measured load confirms is never limited here
(the reserve limits it, as always).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from gridshift.planner.charging import PEAK_MARGIN
from gridshift.planner.ladder import BatteryState
from gridshift.planner.outlook import Outlook


class ReactiveNeed:
    """Energy (Wh) the measured load drew above the trigger over the last ``window_s``, kept in
    buckets of ``bucket_s``: what reactive control would have had to cover from the battery."""

    def __init__(self, window_s: float = 86_400.0, bucket_s: float = 300.0):
        if not (window_s > 0 and bucket_s > 0):
            raise ValueError("window_s and bucket_s must be positive")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.buckets: deque[tuple[float, float]] = deque()  # (bucket start, Wh)
        self.last_t: float | None = None

    def observe(self, times: np.ndarray, values: np.ndarray, trigger_w: float) -> None:
        """Add the samples newer than the last one seen (evenly spaced, as telemetry delivers them)."""
        if len(times) == 0:
            return
        new = times > self.last_t if self.last_t is not None else np.ones(len(times), bool)
        if new.any():
            step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
            above = np.maximum(np.asarray(values, float)[new] - trigger_w, 0.0) * step / 3600.0
            for t, wh in zip(np.asarray(times, float)[new], above, strict=True):
                if wh <= 0:
                    continue
                start = math.floor(t / self.bucket_s) * self.bucket_s
                if self.buckets and self.buckets[-1][0] == start:
                    self.buckets[-1] = (start, self.buckets[-1][1] + wh)
                else:
                    self.buckets.append((start, float(wh)))
            self.last_t = float(times[-1])
        while self.buckets and self.last_t is not None and self.last_t - self.buckets[0][0] > self.window_s:
            self.buckets.popleft()

    @property
    def wh(self) -> float:
        return float(sum(wh for _, wh in self.buckets))


@dataclass(frozen=True)
class Speculation:
    """This period's budget: energy the battery keeps for reactive control, and the watts it may
    discharge beyond what the measured load asks for over the next period."""

    kept_wh: float
    allowance_w: float


def speculation_budget(battery: BatteryState | None, reserve_fraction: float, need: ReactiveNeed,
                       period_s: float) -> Speculation | None:
    """How far ahead of the measured load the battery may discharge over the next period: the
    energy above the reserve and the kept need, spread over the period. None: no battery."""
    if battery is None:
        return None
    kept = PEAK_MARGIN * need.wh
    spare_wh = (battery.soc_fraction - reserve_fraction) * battery.usable_wh - kept
    return Speculation(kept, max(0.0, spare_wh) * 3600.0 / max(period_s, 1.0))


def limit_speculation(view: Outlook, budget: Speculation | None) -> Outlook:
    """The outlook with the battery's bound (the forecast's, or persistence's in reactive mode) no
    higher above the measured load than the budget allows."""
    if budget is None:
        return view
    bound = view.battery_bound_w
    limited = min(bound, view.load_w + budget.allowance_w)
    if limited >= bound:
        return view
    return replace(view, battery_peak_w=limited)
