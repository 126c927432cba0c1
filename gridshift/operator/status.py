"""What a control period reports (pure; no I/O): the policy's conditions, the record of each action
in ``status.recentActions`` and the Event for it, and what the policy's changes keep off the grid."""

from __future__ import annotations

from typing import Any

from gridshift.actuators.kubernetes import Outcome
from gridshift.api.times import rfc3339
from gridshift.operator.events import Event, object_ref
from gridshift.planner import Action, Workload

RECENT_ACTIONS = 20  # status.recentActions keeps the newest this many

EVENT_REASONS = {"discharge": "BatteryDischarge", "charge": "BatteryCharge", "idle": "BatteryIdle",
                 "scaleDown": "ScaleDown", "scaleUp": "ScaleUp", "checkpoint": "CheckpointRequested",
                 "suspend": "Suspend", "resume": "Resume"}


def condition(previous: list[dict], type_: str, status: str, reason: str, message: str, now: float,
               generation: int | None) -> dict[str, Any]:
    """A metav1.Condition whose lastTransitionTime moves only when its status does."""
    prior = next((c for c in previous if c.get("type") == type_), None)
    since = prior["lastTransitionTime"] if prior and prior.get("status") == status else rfc3339(now)
    cond = {"type": type_, "status": status, "reason": reason, "message": message[:32000],
            "lastTransitionTime": since}
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def report_outcome(out: Outcome, dry: bool, now: float) -> tuple[Event, dict[str, Any] | None]:
    """The Event for one action's outcome, and its status record when it was applied or reported."""
    a = out.action
    ok = out.applied or dry
    reason = ("DryRun" if dry else EVENT_REASONS[a.verb]) if ok else "ActionSkipped"
    event = Event("Normal" if ok else "Warning", reason,
                  f"{out.message}: {a.reason} (expected {a.expected_watts:+.0f} W)",
                  target=None if dry else object_ref(a.target))
    record = action_record(a, dry, now, "Reported" if dry else "Applied") if ok else None
    return event, record


def action_record(a: Action, dry: bool, now: float, outcome: str) -> dict[str, Any]:
    """One entry of ``status.recentActions``; ``outcome``: Intended, Applied, Reported or Interrupted."""
    return {"time": rfc3339(now), "rung": a.rung, "verb": a.verb, "target": a.target,
            "expectedWatts": round(a.expected_watts, 1), "dryRun": dry, "outcome": outcome}


def interrupted(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Event]]:
    """The records an operator left Intended when it stopped mid-period, marked Interrupted, and one
    Warning Event for each: every action it may have applied is in status and in Events."""
    out, events = [], []
    for r in records:
        if r.get("outcome") == "Intended":
            r = {**r, "outcome": "Interrupted"}
            events.append(Event("Warning", "ActionInterrupted",
                                f"the operator stopped while applying {r['verb']} to {r['target']} at {r['time']}; "
                                "the object's gridshift.io annotations say whether it was changed"))
        out.append(r)
    return out, events


def shaved_watts(changed: list[Workload]) -> float:
    """Expected watts a policy's current changes keep off: replicas below the recorded original,
    and suspended Jobs."""
    total = 0.0
    for w in changed:
        if w.is_job:
            total += w.replicas * w.watts_per_replica if w.suspended else 0.0
        else:
            total += ((w.original_replicas or w.replicas) - w.replicas) * w.watts_per_replica
    return total
