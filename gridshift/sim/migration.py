"""Following renewable surplus across sites: feasibility-aware migration against energy-only
chasing and against staying put, on real hourly wind and solar from EIA-930. Pure.

Each site has on-site wind and solar whose output follows its balancing authority's hourly
wind + solar (scaled to a nameplate capacity) and a base load of its own; the *surplus* is the
difference. A job runs on renewable power while the surplus at its site covers its power, and on
the grid for the rest. At each hour a job whose site has no surplus may move to the site with the
largest surplus:

- ``stay``: never moves;
- ``chase``: always moves to the greenest site (energy-only chasing, blind to move time);
- ``feasible``: moves only when the feasibility model (``planner.feasibility``) says the move
  finishes within the destination's *forecast* window (at least the current hour; as long as
  yesterday's window lasted from the same hour when that is longer).

A move stops the job for checkpoint + transfer + restore; it is *aborted* (wasted) when the
destination's window has closed by the time the job arrives. Jobs are independent (no contention
for the surplus): the comparison isolates the migration decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gridshift.planner.migration import SiteNow, choose_destination, forecast_window_s, run_length

STRATEGIES = ("stay", "chase", "feasible")


@dataclass(frozen=True)
class Site:
    name: str
    surplus_w: np.ndarray  # per hour of the scenario, W (negative: local load exceeds renewables)


@dataclass(frozen=True)
class Job:
    id: int
    arrival_s: float       # seconds since the scenario start
    duration_s: float      # compute time it needs
    power_w: float
    checkpoint_bytes: float
    home: int


@dataclass(frozen=True)
class Scenario:
    sites: tuple[Site, ...]
    bandwidth_bps: np.ndarray  # [site, site]
    jobs: tuple[Job, ...]
    step_s: float = 300.0
    margin: float = 0.2

    @property
    def hours(self) -> int:
        return len(self.sites[0].surplus_w)


@dataclass
class Outcome:
    strategy: str
    nonrenewable_kwh: float = 0.0
    delay_h: list[float] = field(default_factory=list)
    moves: int = 0
    aborted: int = 0
    unfinished: int = 0

    def summary(self) -> dict[str, float]:
        return {"nonrenewable_kwh": round(self.nonrenewable_kwh, 1),
                "mean_delay_h": round(float(np.mean(self.delay_h)) if self.delay_h else 0.0, 2),
                "moves": self.moves, "aborted_moves": self.aborted, "unfinished_jobs": self.unfinished}


def window_hours(surplus_w: np.ndarray, hour: int, need_w: float) -> int:
    """Consecutive hours from ``hour`` whose surplus covers ``need_w`` (the window still ahead)."""
    return run_length(list(surplus_w >= need_w), hour)


def forecast_window_hours(surplus_w: np.ndarray, hour: int, need_w: float) -> int:
    """The window ahead as the operator forecasts it (``planner.migration.forecast_window_s``) from
    the hours up to now: none without surplus now; else at least this hour (persistence), or as long
    as it lasted from the same hour yesterday (seasonal naive)."""
    return round(forecast_window_s(surplus_w[:hour + 1], 3600.0, need_w) / 3600.0)


def windows(surplus_w: np.ndarray, need_w: float, min_hours: int = 1) -> list[tuple[int, int]]:
    """Renewable windows: runs of hours (start, end exclusive) with surplus >= need for >= min_hours."""
    out, start = [], None
    for h, ok in enumerate(np.append(surplus_w >= need_w, False)):
        if ok and start is None:
            start = h
        elif not ok and start is not None:
            if h - start >= min_hours:
                out.append((start, h))
            start = None
    return out


def simulate(scn: Scenario, strategy: str) -> Outcome:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    out = Outcome(strategy)
    horizon_s = scn.hours * 3600.0
    for job in scn.jobs:
        t, site, done, decided_hour = job.arrival_s, job.home, 0.0, -1
        while done < job.duration_s - 1e-6 and t < horizon_s:
            hour = int(t // 3600)
            surplus = [s.surplus_w[hour] for s in scn.sites]
            if strategy != "stay" and hour != decided_hour and surplus[site] < job.power_w:
                decided_hour = hour
                options = [SiteNow(str(k), surplus[k], forecast_window_hours(s.surplus_w, hour, job.power_w) * 3600.0,
                                   float(scn.bandwidth_bps[site, k])) for k, s in enumerate(scn.sites)]
                decision = choose_destination(job.power_w, job.checkpoint_bytes, str(site), options, scn.margin)
                if decision.site is not None and decision.verdict is not None:
                    dest, verdict = int(decision.site), decision.verdict
                    if strategy == "chase" or verdict.feasible:
                        out.moves += 1
                        out.nonrenewable_kwh += verdict.move_energy_j / 3.6e6
                        t += verdict.move_s
                        site = dest
                        arrived = min(int(t // 3600), scn.hours - 1)
                        if scn.sites[dest].surplus_w[arrived] < job.power_w:
                            out.aborted += 1
                        continue
            step = min(scn.step_s, job.duration_s - done, (hour + 1) * 3600.0 - t)
            renewable = min(1.0, max(0.0, surplus[site] / job.power_w))
            out.nonrenewable_kwh += job.power_w * step * (1 - renewable) / 3.6e6
            done += step
            t += step
        if done < job.duration_s - 1e-6:
            out.unfinished += 1
        else:
            out.delay_h.append((t - job.arrival_s - job.duration_s) / 3600.0)
    return out


def build_scenario(variable_renewable: dict[str, np.ndarray], *, start_hour: int, days: int, seed: int = 0,
                   capacity_w: float = 200_000.0, base_load_w: float = 100_000.0, jobs_per_hour: float = 0.4,
                   bandwidth_bps: tuple[float, float] = (1e9, 100e9),
                   checkpoint_bytes: tuple[float, float] = (1e9, 1e12)) -> Scenario:
    """Sites from each BA's hourly wind + solar (scaled so its best hour of the year gives
    ``capacity_w``) less a base load, with one day of history before ``start_hour`` for the
    forecast; a seeded stream of jobs arriving over the first ``days - 2`` days (so most finish):
    1 to 4 nodes of 8 x 700 W, 2 to 12 h of compute, checkpoints and WAN links log-uniform in the
    given ranges (1 GB to 1 TB, 1 to 100 Gbit/s by default)."""
    if start_hour < 24:
        raise ValueError("start_hour must leave one day of history for the window forecast")
    rng = np.random.default_rng(seed)
    hours = (days + 1) * 24
    sites = []
    for name, series in variable_renewable.items():
        profile = series / max(float(series.max()), 1e-9)
        window = profile[start_hour - 24:start_hour - 24 + hours]
        if len(window) < hours:
            raise ValueError(f"{name}: {days} days from hour {start_hour} run past the data ({len(profile)} hours)")
        sites.append(Site(name, capacity_w * window - base_load_w))
    n = len(sites)
    lo, hi = np.log10(bandwidth_bps[0]), np.log10(bandwidth_bps[1])
    bandwidth = 10 ** rng.uniform(lo, hi, size=(n, n))
    bandwidth = np.minimum(bandwidth, bandwidth.T)
    jobs = []
    t = 86400.0
    arrival_end = 86400.0 + max(days - 2, 1) * 86400.0
    while True:
        t += rng.exponential(3600.0 / jobs_per_hour)
        if t >= arrival_end:
            break
        nodes = int(rng.integers(1, 5))
        size = float(10 ** rng.uniform(np.log10(checkpoint_bytes[0]), np.log10(checkpoint_bytes[1])))
        jobs.append(Job(len(jobs), t, float(rng.uniform(2, 12)) * 3600.0, nodes * 8 * 700.0, size,
                        int(rng.integers(0, n))))
    return Scenario(tuple(sites), bandwidth, tuple(jobs))


def compare(scn: Scenario) -> dict[str, dict[str, float]]:
    """Every strategy on the same scenario, plus a breakdown by checkpoint size."""
    result: dict[str, dict[str, float]] = {}
    for strategy in STRATEGIES:
        result[strategy] = simulate(scn, strategy).summary()
        for label, lo, hi in (("<=10GB", 0, 1e10), ("10-100GB", 1e10, 1e11), (">100GB", 1e11, math.inf)):
            subset = Scenario(scn.sites, scn.bandwidth_bps, tuple(j for j in scn.jobs if lo < j.checkpoint_bytes <= hi),
                              scn.step_s, scn.margin)
            result[strategy][f"nonrenewable_kwh_{label}"] = simulate(subset, strategy).summary()["nonrenewable_kwh"]
    return result
