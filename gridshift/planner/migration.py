"""Where a job should move to follow renewable surplus, and why it stays when it does not. Pure:
the operator and ``gridshift sim migration`` decide through it the same way.

A job is a candidate when it declares its checkpoint size; the destination is the site with the
largest renewable surplus that covers the job's power; the move is then judged by the feasibility
model (``planner.feasibility``) over that site's remaining window, and every decision carries the
verdict's numbers and, when the job stays, the constraint that bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridshift.planner.feasibility import Move, Verdict, assess


@dataclass(frozen=True)
class SiteNow:
    """A destination as it stands this period: surplus renewable power over its own load (W), the
    forecast length of the window that surplus lasts (s), and the WAN bandwidth to it (bit/s)."""

    name: str
    surplus_w: float
    window_s: float
    bandwidth_bps: float


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
    covering = [s for s in sites if s.name != here and s.surplus_w >= power_w and s.window_s > 0]
    if not covering:
        return MoveDecision(None, False, f"no other site has {power_w / 1000:.1f} kW of renewable surplus")
    best = max(covering, key=lambda s: (s.surplus_w, s.name))
    verdict = assess(Move(checkpoint_bytes, best.bandwidth_bps, best.window_s, margin, job_power_w=power_w))
    if verdict.feasible:
        why = (f"move to {best.name} takes {verdict.move_s:.0f} s of a {verdict.time_budget_s:.0f} s budget "
               f"and avoids {verdict.avoided_energy_j / 3.6e6:.1f} kWh of non-renewable energy")
    elif verdict.binding == "time":
        why = (f"stays: the move to {best.name} takes {verdict.move_s:.0f} s (checkpoint {verdict.checkpoint_s:.0f} s "
               f"+ transfer {verdict.transfer_s:.0f} s + restore {verdict.restore_s:.0f} s), more than "
               f"{verdict.time_budget_s:.0f} s, (1 - margin) of its {best.window_s:.0f} s window; binding: time")
    else:
        why = (f"stays: moving to {best.name} costs {verdict.move_energy_j / 3.6e6:.2f} kWh, more than the "
               f"{verdict.avoided_energy_j / 3.6e6:.2f} kWh of non-renewable energy it avoids; binding: energy")
    return MoveDecision(best.name, verdict.feasible, why, verdict)
