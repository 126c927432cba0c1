"""Where a job should move to follow renewable surplus, and why it stays when it does not. Pure:
the operator and ``gridshift sim migration`` decide through it the same way.

A job is a candidate when it declares its checkpoint size; the destination is the site with the
largest renewable surplus that covers the job's power; the move is then judged by the feasibility
model (``planner.feasibility``) over that site's remaining window, and every decision carries the
verdict's numbers and, when the job stays, the constraint that bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gridshift.planner.feasibility import Move, Verdict, assess


@dataclass(frozen=True)
class SiteNow:
    """A destination as it stands this period: surplus renewable power over its own load (W), the
    forecast length of the window that surplus lasts (s), and the WAN bandwidth to it (bit/s).
    With ``history_w`` (its surplus at ``step_s``, now last) the window is forecast for each job's
    power instead (``forecast_window_s``)."""

    name: str
    surplus_w: float
    window_s: float
    bandwidth_bps: float
    history_w: tuple[float, ...] = ()
    step_s: float = 3600.0

    def window_for(self, need_w: float) -> float:
        """Forecast time that surplus of at least ``need_w`` lasts from now (s)."""
        return forecast_window_s(self.history_w, self.step_s, need_w) if self.history_w else self.window_s

    def less(self, taken_w: float) -> SiteNow:
        """The site once a job of ``taken_w`` has moved there."""
        return replace(self, surplus_w=self.surplus_w - taken_w, history_w=tuple(v - taken_w for v in self.history_w))


@dataclass(frozen=True)
class MoveDecision:
    site: str | None          # the destination judged (None: no site has surplus for the job)
    feasible: bool
    reason: str
    verdict: Verdict | None = None


def choose_destination(power_w: float, checkpoint_bytes: float | None, here: str, sites: list[SiteNow],
                       margin: float) -> MoveDecision:
    """The greenest site other than ``here`` whose surplus covers ``power_w``, and whether the move
    there fits its window. A job with no declared checkpoint size never moves."""
    if checkpoint_bytes is None or checkpoint_bytes <= 0:
        return MoveDecision(None, False, "no declared checkpoint size (gridshift.io/checkpoint-bytes): not migrated")
    covering = [s for s in sites if s.name != here and s.surplus_w >= power_w and s.window_for(power_w) > 0]
    if not covering:
        return MoveDecision(None, False, f"no other site has {power_w / 1000:.1f} kW of renewable surplus")
    best = max(covering, key=lambda s: (s.surplus_w, s.name))
    window_s = best.window_for(power_w)
    verdict = assess(Move(checkpoint_bytes, best.bandwidth_bps, window_s, margin, job_power_w=power_w))
    if verdict.feasible:
        why = (f"move to {best.name} takes {verdict.move_s:.0f} s of a {verdict.time_budget_s:.0f} s budget "
               f"and avoids {verdict.avoided_energy_j / 3.6e6:.1f} kWh of non-renewable energy")
    elif verdict.binding == "time":
        why = (f"stays: the move to {best.name} takes {verdict.move_s:.0f} s (checkpoint {verdict.checkpoint_s:.0f} s "
               f"+ transfer {verdict.transfer_s:.0f} s + restore {verdict.restore_s:.0f} s), more than "
               f"{verdict.time_budget_s:.0f} s, (1 - margin) of its {window_s:.0f} s window; binding: time")
    else:
        why = (f"stays: moving to {best.name} costs {verdict.move_energy_j / 3.6e6:.2f} kWh, more than the "
               f"{verdict.avoided_energy_j / 3.6e6:.2f} kWh of non-renewable energy it avoids; binding: energy")
    return MoveDecision(best.name, verdict.feasible, why, verdict)


# -- windows ----------------------------------------------------------------------------------------------------------


def run_length(covered: list[bool], start: int) -> int:
    """Consecutive True entries of ``covered`` from ``start``."""
    n = 0
    while start + n < len(covered) and covered[start + n]:
        n += 1
    return n


def forecast_window_s(surplus_w: Sequence[float], step_s: float, need_w: float, period_s: float = 86400.0) -> float:
    """How long surplus covering ``need_w`` lasts from now, as it can be known now. ``surplus_w`` is
    the history at ``step_s`` with now last (NaN: unknown, never surplus). None without surplus now;
    else at least one step (persistence), or as long as it lasted from the same time one ``period_s``
    ago (seasonal naive), counted over history only and at most one period."""
    covered = [bool(v >= need_w) for v in surplus_w]  # NaN compares False
    if not covered or not covered[-1]:
        return 0.0
    lag = round(period_s / step_s)
    then = len(covered) - 1 - lag
    seasonal = run_length(covered[:-1], then) if then >= 0 else 0
    return max(1, min(seasonal, lag)) * step_s


def surplus(renewable_w: float, load_w: float, budget_w: float | None = None) -> float:
    """Power a site can take on from renewables: supply less load, and no more than its budget leaves."""
    room = renewable_w - load_w
    return room if budget_w is None else min(room, budget_w - load_w)


# -- the operator's decision over its migratable Jobs --------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A running Job that may move: its power, declared checkpoint size and the site it runs on."""

    key: str
    power_w: float
    checkpoint_bytes: float | None
    here: str | None


@dataclass(frozen=True)
class JobDecision:
    key: str
    here: str | None
    move: bool                # start the move this period
    decision: MoveDecision


def plan_moves(candidates: list[Candidate], sites: list[SiteNow], margin: float,
               max_starts: int = 1) -> list[JobDecision]:
    """Which Jobs move where this period. A Job stays while its own site's renewable supply covers
    the site's load, its own included (a NaN surplus is unknown, and the Job stays too). Otherwise
    it moves to the greenest site whose surplus covers it, when the move fits that site's window.
    Surplus taken by a move is gone for the Jobs judged after it; the largest Jobs are judged
    first; at most ``max_starts`` moves start."""
    by_name = {s.name: s for s in sites}
    left = {s.name: s for s in sites}
    out: list[JobDecision] = []
    starts = 0
    for job in sorted(candidates, key=lambda c: (-c.power_w, c.key)):
        home = by_name.get(job.here) if job.here is not None else None
        if job.here is None or home is None:
            out.append(JobDecision(job.key, None, False, MoveDecision(None, False, "stays: runs on no site's nodes")))
            continue
        if math.isnan(home.surplus_w):
            why = f"stays: {job.here}'s renewable supply or load is unknown"
            out.append(JobDecision(job.key, job.here, False, MoveDecision(job.here, False, why)))
            continue
        if home.surplus_w >= 0:
            why = f"stays: {job.here}'s renewable supply covers it ({home.surplus_w / 1000:.1f} kW to spare)"
            out.append(JobDecision(job.key, job.here, False, MoveDecision(job.here, False, why)))
            continue
        decision = choose_destination(job.power_w, job.checkpoint_bytes, job.here, list(left.values()), margin)
        move = decision.feasible and starts < max_starts
        if decision.feasible and not move:
            decision = MoveDecision(decision.site, True, f"waits: one move starts per period; {decision.reason}",
                                    decision.verdict)
        if move and decision.site is not None:
            starts += 1
            left[decision.site] = left[decision.site].less(job.power_w)
        out.append(JobDecision(job.key, job.here, move, decision))
    return out
