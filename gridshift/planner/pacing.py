"""Discharge pacing, pure: how much of the margin between the trigger and the cap the battery may
leave to the forecast when its energy would not last.

A battery set every period against the upper bound of a spiky load discharges for the bound, not
for the load: over a 5 s period most of that energy takes the grid below the trigger, and on a
long peak the battery reaches its reserve while the peak is still on (every spike then goes
through). So the battery paces itself by its *endurance*, how long its energy above the reserve
lasts at its recent mean discharge (an exponential average over ``tau_s``). While the endurance is
at least ``pace_s`` the battery plans its bound against the trigger, as the workload rungs do;
below that it lets its bound rise toward the cap in proportion (the whole margin, ``cap -
trigger``, when it has nothing left), and never lets the median forecast above the trigger. The
cap margin is there for forecast error; a battery that would run out trades some of it for lasting
through the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gridshift.planner.ladder import BatteryState

DEFAULT_TAU_S = 1800.0


class DischargePace:
    """The battery's mean discharge power (W, charging counts as 0), exponentially weighted with
    time constant ``tau_s``, from what it was asked every period."""

    def __init__(self, tau_s: float = DEFAULT_TAU_S):
        if not tau_s > 0:
            raise ValueError(f"tau_s must be positive, got {tau_s}")
        self.tau_s = tau_s
        self.mean_w = 0.0
        self.last_t: float | None = None

    def observe(self, t: float, discharge_w: float) -> None:
        """``discharge_w`` held since the previous observation (the setpoint of the period that ends at ``t``)."""
        if self.last_t is not None and t > self.last_t:
            weight = 1.0 - math.exp(-(t - self.last_t) / self.tau_s)
            self.mean_w += (max(0.0, discharge_w) - self.mean_w) * weight
        if self.last_t is None or t > self.last_t:
            self.last_t = t


def endurance_s(soc_fraction: float, usable_wh: float, reserve_fraction: float, mean_discharge_w: float) -> float:
    """Seconds the energy above the reserve lasts at ``mean_discharge_w`` (inf when it is not discharging)."""
    above_wh = max(0.0, soc_fraction - reserve_fraction) * usable_wh
    if mean_discharge_w <= 1e-9:
        return math.inf
    return above_wh * 3600.0 / mean_discharge_w


@dataclass(frozen=True)
class Pacing:
    """What pacing decided this period: the battery's endurance, the watts of the cap margin its
    bound may use (0: it plans against the trigger), and the discharge it could hold for the whole
    pace (what the workload rungs may count on while it is paced)."""

    endurance_s: float
    margin_w: float
    sustain_w: float = math.inf

    @property
    def paced(self) -> bool:
        return self.margin_w > 0

    @property
    def credit_w(self) -> float | None:
        """What the workload rungs may count on the battery for (``PlanInput.battery_credit_w``):
        what it sustains over the pace while paced, its headroom (None) otherwise."""
        return self.sustain_w if self.paced else None


def pacing(endurance: float, pace_s: float, cap_w: float, trigger_w: float, above_wh: float = math.inf) -> Pacing:
    """The share of the margin ``cap_w - trigger_w`` the battery's bound may use: none at
    ``pace_s`` of endurance or more (or when ``pace_s`` is 0: pacing off), all of it at none.
    ``above_wh``: the energy above the reserve, which sets what the battery sustains over ``pace_s``."""
    margin = max(0.0, cap_w - trigger_w)
    if pace_s <= 0 or not endurance < pace_s:
        return Pacing(endurance, 0.0)
    return Pacing(endurance, margin * (1.0 - max(0.0, endurance) / pace_s), above_wh * 3600.0 / pace_s)


def paced_peak(bound_w: float, median_w: float, load_w: float, margin_w: float) -> float:
    """What the battery plans against the trigger: its bound less the margin it may use, never
    below the median forecast or the measured load."""
    return max(load_w, bound_w - max(0.0, margin_w), median_w)


def pace_battery(pace: DischargePace, battery: BatteryState | None, *, now: float, reserve_fraction: float,
                 pace_s: float, cap_w: float, trigger_w: float) -> Pacing | None:
    """One period of pacing, as the operator and the simulator run it: ``pace`` takes the setpoint
    the battery held until ``now``, then the margin follows from its endurance. None: no battery."""
    if battery is None:
        return None
    pace.observe(now, battery.setpoint_w)
    above_wh = max(0.0, battery.soc_fraction - reserve_fraction) * battery.usable_wh
    left = endurance_s(battery.soc_fraction, battery.usable_wh, reserve_fraction, pace.mean_w)
    return pacing(left, pace_s, cap_w, trigger_w, above_wh)
