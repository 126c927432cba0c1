"""Admission before a surge, pure: which gated jobs may start now.

A training job that starts is a step of its whole power within seconds, and a surge the forecast
cannot see coming from the load alone. So new GPU work waits at the door (a scheduling gate) while
the site has no room for it: each period the policy admits gated jobs, highest priority first and
the longest-waiting first among equals, while their expected power fits in the headroom the plan
leaves below the restore threshold (after this period's restores: work that was running comes back
before new work starts). The first that does not fit stops the rest, so a large job is not starved
by smaller ones behind it. Jobs that have waited ``max_wait_s`` come first, the longest-waiting
first, and one of them a period starts whatever the headroom: admission delays work, never refuses
it, and a backlog that has waited too long still starts one job at a time, never all at once (a
step the planner could not answer within the period). The simulator and the operator share it.
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
    overdue: tuple[str, ...]   # admitted after waiting max_wait_s (the first of them whether it fits or not)


def admission_headroom(trigger_w: float, hysteresis: float, expected_peak_w: float, restored_w: float) -> float:
    """Watts new work may add: the restore threshold less the plan's expected peak and what this
    period's restores bring back."""
    return trigger_w * (1.0 - hysteresis) - expected_peak_w - max(0.0, restored_w)


def admit(gated: Sequence[Gated], headroom_w: float, max_wait_s: float) -> Admission:
    """Which of ``gated`` start now (see the module docstring)."""
    late = sorted((g for g in gated if g.waited_s >= max_wait_s), key=lambda g: (-g.waited_s, -g.priority, g.key))
    room = headroom_w
    admitted: list[str] = []
    for g in late:  # the longest-waiting first; the first of them starts even without room
        if g.watts > room and admitted:
            break
        admitted.append(g.key)
        room -= g.watts
    if len(admitted) == len(late):  # no late job left behind: the others by priority, while they fit
        for g in sorted(gated, key=lambda g: (-g.priority, -g.waited_s, g.key)):
            if g.key in admitted:
                continue
            if g.watts > room:
                break
            admitted.append(g.key)
            room -= g.watts
    late_keys = {g.key for g in late}
    return Admission(tuple(admitted), room, tuple(k for k in admitted if k in late_keys))
