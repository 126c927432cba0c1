"""A battery as physics: energy in watt-hours, rate limits, round-trip efficiency, state of health.

Power is measured on the AC side and positive when discharging, as everywhere in gridshift. Half of
the round-trip loss is taken on the way in and half on the way out (each leg has efficiency
``sqrt(round_trip)``). The usable capacity is the nameplate capacity times the state of health.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class BatteryPhysics:
    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    round_trip_efficiency: float = 0.9
    soc_fraction: float = 0.8
    soh_fraction: float = 1.0
    self_discharge_per_day: float = 0.0
    charged_ac_wh: float = 0.0     # energy taken from the site (AC), cumulative
    discharged_ac_wh: float = 0.0  # energy given to the site (AC), cumulative
    power_w: float = 0.0           # AC power of the last step, + discharging

    def __post_init__(self) -> None:
        for name in ("capacity_wh", "max_charge_w", "max_discharge_w"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.round_trip_efficiency <= 1:
            raise ValueError(f"round_trip_efficiency must be in (0, 1], got {self.round_trip_efficiency}")
        for name in ("soc_fraction", "soh_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def leg_efficiency(self) -> float:
        return math.sqrt(self.round_trip_efficiency)

    @property
    def usable_wh(self) -> float:
        return self.capacity_wh * self.soh_fraction

    @property
    def stored_wh(self) -> float:
        return self.soc_fraction * self.usable_wh

    def step(self, command_w: float, dt_s: float) -> float:
        """Apply ``command_w`` (AC, + discharges) for ``dt_s`` seconds within the rate limits and an
        empty or full battery. Returns the AC power actually delivered."""
        if dt_s <= 0:
            return self.power_w
        hours = dt_s / 3600.0
        stored = self.stored_wh * (1.0 - self.self_discharge_per_day * dt_s / 86400.0)
        eta = self.leg_efficiency
        if command_w > 0:
            power = max(0.0, min(command_w, self.max_discharge_w, stored * eta / hours))
            stored -= power * hours / eta
            self.discharged_ac_wh += power * hours
        elif command_w < 0:
            power = -max(0.0, min(-command_w, self.max_charge_w, (self.usable_wh - stored) / eta / hours))
            stored -= power * hours * eta
            self.charged_ac_wh -= power * hours
        else:
            power = 0.0
        self.soc_fraction = min(1.0, max(0.0, stored / self.usable_wh)) if self.usable_wh > 0 else 0.0
        self.power_w = power
        return power
