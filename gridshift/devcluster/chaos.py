"""The chaos suite's pure parts: which faults a run injects and when, and the audit that ends it.

A run (``bench/chaos.py``) drives the closed loop on the local control plane: a policy sheds a surge
with its workload rungs and restores after it, while faults strike at random. It records every
change of a governed object's replicas or suspension as the API server saw it (``Change``) and
every action the operators recorded in the policy's status (``Record``, the union of
``status.recentActions`` over the run). The audit then counts:

- objects lost: not back at their original replicas, suspension and annotations after the policy
  is deleted;
- unrecorded changes: a change made while the policy lived that no recorded action explains (one
  record explains one change of its target in its direction);
- doubled actions: a change that only an action already used for an earlier change could explain
  (the same decision applied twice);
- crossings caused by gridshift: a second over the cap within ``window_s`` of a restore, while no
  crossing was under way before it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FAULTS = ("kill", "prometheus", "prometheus_net", "silent", "api", "api_slow", "apiserver", "etcd")
"""SIGKILL of the operator (restarted after a while), Prometheus stopped and started, the policy's
connections to Prometheus reset and refused, a governed node's exporter silent, the operator's
connections to the API server reset and refused, the same connections slowed (each chunk held for a
second), the kube-apiserver SIGKILLed and restarted, etcd SIGKILLed and restarted."""

CONTROL_PLANE_FAULTS = ("apiserver", "etcd")
"""The faults that need a control plane the run may restart (not a cluster other tests share)."""


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float        # since the run's start
    lasts_s: float     # until it is healed (the operator restarted, Prometheus back, ...)


def fault_plan(rng: random.Random, count: int, span_s: float, kinds: Sequence[str] = FAULTS) -> list[Fault]:
    """``count`` faults at uniformly random times within ``span_s``, kinds drawn uniformly, each
    lasting 1 to 8 s; in time order."""
    if count < 0 or span_s <= 0:
        raise ValueError(f"count must be >= 0 and span_s positive, got {count} and {span_s}")
    unknown = set(kinds) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected some of {FAULTS}")
    faults = [Fault(rng.choice(list(kinds)), round(rng.uniform(0.0, span_s), 2), round(rng.uniform(1.0, 8.0), 2))
              for _ in range(count)]
    return sorted(faults, key=lambda f: f.at_s)


@dataclass(frozen=True)
class Change:
    """A governed object's replicas or suspension changed, as the API server recorded it."""

    t: float
    target: str    # Kind/namespace/name
    verb: str      # scaleDown, scaleUp, suspend, resume


@dataclass(frozen=True)
class Record:
    """An action in the policy's status (any outcome but Reported: Intended, Applied, Interrupted)."""

    t: float
    target: str
    verb: str


RESTORES = ("scaleUp", "resume")


def change_of(target: str, before: tuple[int | None, bool], after: tuple[int | None, bool], t: float) -> Change | None:
    """The change between two observed (replicas, suspended) states of ``target``, or None."""
    (r0, s0), (r1, s1) = before, after
    if s0 != s1:
        return Change(t, target, "suspend" if s1 else "resume")
    if r0 is not None and r1 is not None and r0 != r1:
        return Change(t, target, "scaleDown" if r1 < r0 else "scaleUp")
    return None


def explain(changes: Iterable[Change], records: Iterable[Record], slack_s: float = 5.0) -> tuple[list[Change],
                                                                                                   list[Change]]:
    """(unrecorded, doubled): each change is explained by the earliest unused record of its target
    and verb made before it (``slack_s`` for clocks); a change with no such record is doubled when a
    used one would have explained it, else unrecorded."""
    unused = sorted(set(records), key=lambda r: r.t)
    used: list[Record] = []
    unrecorded, doubled = [], []
    for change in sorted(changes, key=lambda c: c.t):
        fits = [r for r in unused if r.target == change.target and r.verb == change.verb
                and r.t <= change.t + slack_s]
        if fits:
            unused.remove(fits[0])
            used.append(fits[0])
        elif any(r.target == change.target and r.verb == change.verb for r in used):
            doubled.append(change)
        else:
            unrecorded.append(change)
    return unrecorded, doubled


def lost(originals: dict[str, tuple[int | None, bool]], finals: dict[str, tuple[int | None, bool]],
         annotated: Iterable[str]) -> list[str]:
    """Objects not back at their original (replicas, suspended), or still carrying gridshift's records."""
    out = {t for t, state in originals.items() if finals.get(t) != state}
    return sorted(out | set(annotated))


def own_crossings(power: Sequence[tuple[float, float]], cap_w: float, restores: Iterable[Change],
                  window_s: float = 15.0) -> list[tuple[float, float]]:
    """Seconds over ``cap_w`` within ``window_s`` after a restore, when the last sample before the
    restore was under the cap (a crossing already under way is not the restore's)."""
    out: list[tuple[float, float]] = []
    for change in restores:
        before = [w for t, w in power if t <= change.t]
        if before and before[-1] > cap_w:
            continue
        out.extend((t, w) for t, w in power if change.t < t <= change.t + window_s and w > cap_w)
    return sorted(set(out))
