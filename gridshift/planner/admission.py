"""Admission before a surge, pure: which gated jobs may start now.

A training job that starts is a step of its whole power within seconds, and a surge the forecast
cannot see coming from the load alone. So new GPU work waits at the door (a scheduling gate) while
the site has no room for it: each period the policy admits gated jobs, highest priority first and
the longest-waiting first among equals, while their expected power fits in the headroom the plan
leaves below the restore threshold (after this period's restores: work that was running comes back
before new work starts). The first that does not fit stops the rest, so a large job is not starved
by smaller ones behind it; a job that has waited ``max_wait_s`` starts whatever the headroom, so
admission delays work, never refuses it. The simulator and the operator share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Gated:
    """A job held at the door: what it will draw once it runs, its priority, how long it has waited."""

    key: str
    watts: float
    priority: int = 0
    waited_s: float = 0.0


@dataclass(frozen=True)
class Admission:
    admitted: tuple[str, ...]
    headroom_w: float          # what was left for the next period after the admitted jobs
    overdue: tuple[str, ...]   # admitted because they waited max_wait_s, room or not


def admission_headroom(trigger_w: float, hysteresis: float, expected_peak_w: float, restored_w: float) -> float:
    """Watts new work may add: the restore threshold less the plan's expected peak and what this
    period's restores bring back."""
    return trigger_w * (1.0 - hysteresis) - expected_peak_w - max(0.0, restored_w)


def admit(gated: Sequence[Gated], headroom_w: float, max_wait_s: float) -> Admission:
    """Which of ``gated`` start now (see the module docstring)."""
    order = sorted(gated, key=lambda g: (-g.priority, -g.waited_s, g.key))
    overdue = tuple(g.key for g in order if g.waited_s >= max_wait_s)
    room = headroom_w - sum(g.watts for g in order if g.key in overdue)
    admitted = list(overdue)
    for g in order:
        if g.key in overdue:
            continue
        if g.watts > room:
            break
        admitted.append(g.key)
        room -= g.watts
    return Admission(tuple(admitted), room, overdue)
