"""What a control period reports (pure; no I/O): the policy's status and conditions
(:func:`explain`, through ``PowerPolicyStatus``), the record of each action in
``status.recentActions`` and the Event for it, and what the policy's changes keep off the grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from gridshift.actuators.kubernetes import Outcome
from gridshift.api.powerpolicy import Condition, PowerPolicySpec, PowerPolicyStatus
from gridshift.api.times import rfc3339
from gridshift.operator.events import Event, object_ref
from gridshift.planner import Action, Workload
from gridshift.planner.ladder import BatteryState, Plan
from gridshift.planner.outlook import Outlook
from gridshift.planner.pacing import Pacing
from gridshift.planner.skill import Skill
from gridshift.planner.speculation import Speculation

RECENT_ACTIONS = 20  # status.recentActions keeps the newest this many

EVENT_REASONS = {"discharge": "BatteryDischarge", "charge": "BatteryCharge", "idle": "BatteryIdle",
                 "scaleDown": "ScaleDown", "scaleUp": "ScaleUp", "checkpoint": "CheckpointRequested",
                 "suspend": "Suspend", "resume": "Resume"}


def condition(previous: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, now: float,
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
        if w.suspendable:
            total += w.replicas * w.watts_per_replica if w.suspended else 0.0
        else:
            total += ((w.original_replicas or w.replicas) - w.replicas) * w.watts_per_replica
    return total


def whole_watts(watts: float | None) -> int | None:
    """Watts for a printer column: whole (`kubectl get pp` prints a fractional number in exponent
    notation), None when unknown or not finite."""
    return round(watts) if watts is not None and math.isfinite(watts) else None


@dataclass(frozen=True)
class PeriodFacts:
    """What one control period of ``policy`` saw and decided, as its status reports it.

    ``workloads``, ``notes``, ``nodes``: the inventory's workloads, its notes and how many nodes it
    governs; ``battery``: the policy's battery as read; ``error``, ``coverage``: the forecast's recent
    error fraction and bound coverage; ``adapted``: how many matured forecasts the online adapter learned
    from and the predictors it chose (None: it has not learned)."""

    policy: str
    spec: PowerPolicySpec
    generation: int | None
    now: float
    force_dry_run: bool
    nodes: int
    workloads: list[Workload]
    notes: list[str]
    battery: BatteryState | None
    view: Outlook
    plan: Plan
    error: float | None = None
    coverage: float | None = None
    adapted: tuple[int, list[str]] | None = None
    paced: Pacing | None = None
    skill: Skill | None = None
    speculation: Speculation | None = None
    paused: bool = False  # the policy's gridshift.io/paused: the plan is reported, not applied

    @property
    def changed(self) -> list[Workload]:
        """The workloads this policy holds changed."""
        return [w for w in self.workloads if w.managed_by == self.policy]


@dataclass(frozen=True)
class Explanation:
    """A period's status fields (merged into the policy's status), the Events it adds, and what the
    ReactiveControl Event last said (None once control is predictive again): one Event while the
    reason holds, not one a period."""

    status: PowerPolicyStatus
    events: list[Event]
    reactive_said: str | None


def _forecast_message(f: PeriodFacts) -> tuple[str, str]:
    """The ForecastHealthy message, and the online adapter's part of it."""
    spec, view, paced = f.spec, f.view, f.paced
    message = (f"p{spec.forecast.confidence * 100:g} upper bound {view.forecast_peak_w:.0f} W over "
               f"{spec.forecast.horizon_seconds} s" if view.forecast_peak_w is not None else "no forecast")
    if view.battery_peak_w is not None and view.forecast_peak_w is not None:
        message += f" ({view.battery_peak_w:.0f} W up to the next period, which the battery plans against)"
    if view.battery_margin_w > 0 and paced is not None and view.forecast_peak_w is not None:
        message += (f"; battery paced: its energy lasts {paced.endurance_s / 60:.0f} min at its recent mean "
                    f"discharge, so it leaves {view.battery_margin_w:.0f} W of the cap margin to the forecast")
    adapted = ""
    if f.adapted is not None and view.forecast_peak_w is not None:
        learned, choice = f.adapted
        adapted = (f"; median adapted to this site from {learned} matured forecasts "
                   f"(forecasting with: {', '.join(dict.fromkeys(choice))})")
        message += adapted
    if f.speculation is not None and view.forecast_peak_w is not None and f.speculation.allowance_w <= 0:
        message += (f"; the battery follows the measured load: it keeps {f.speculation.kept_wh:.0f} Wh "
                    "for the overshoot reactive control would cover")
    return message, adapted


def explain(f: PeriodFacts, previous: list[dict[str, Any]], reactive_said: str | None) -> Explanation:
    """The status of a period that read fresh telemetry and planned: phase, conditions (each
    ``lastTransitionTime`` kept from ``previous`` while its status holds), the forecast figures, and
    the ReactiveControl / PredictiveControl Event when control changes mode."""
    spec, view, decided, now, generation = f.spec, f.view, f.plan, f.now, f.generation
    changed = f.changed
    battery_on = f.battery is not None and f.battery.managed_by == f.policy and f.battery.setpoint_w > 0
    shaving = [a for a in decided.actions if a.expected_watts > 0]
    dry = spec.safety.dry_run or f.force_dry_run
    acting = bool(changed or battery_on or (dry and shaving))
    phase: Literal["Watching", "Acting", "Restoring", "Paused"]
    if f.paused:
        phase = "Paused"
    elif decided.mode == "shave" or (acting and decided.mode == "hold"):
        phase = "Acting"
    elif decided.mode == "restore" and (changed or battery_on):
        phase = "Restoring"
    else:
        phase = "Watching"
    if acting:
        what = ", ".join(sorted(w.key for w in changed)) + (" and the battery" if battery_on else "")
        forced = ", forced by the operator's --dry-run" if f.force_dry_run and not spec.safety.dry_run else ""
        acting_msg = (f"would shave {sum(a.expected_watts for a in shaving):.0f} W (dry-run{forced})"
                      if dry else f"holding changes on {what or 'nothing'}")
    else:
        acting_msg = "nothing changed by this policy"
    if f.paused:
        planned = ", ".join(f"{a.verb} {a.target}" for a in decided.actions) or "nothing"
        acting_msg = (f"paused by the gridshift.io/paused annotation: would {planned}; {acting_msg}; nothing is "
                      "changed or restored until it is removed (the battery still stops at its reserve)")
    forecast_msg, adapted = _forecast_message(f)
    events: list[Event] = []
    below_persistence = f.skill is not None and view.reason == f.skill.reason
    if view.mode == "reactive":
        forecast_msg = f"reactive control: {view.reason}{adapted}"
        # The skill gate's reason carries its running ratios: what was said is "skill gate" while it holds.
        said: str | None = "skill gate" if below_persistence else view.reason
        if reactive_said != said:
            events.append(Event("Warning", "ReactiveControl", forecast_msg))
    else:
        said = None
        if reactive_said is not None:
            events.append(Event("Normal", "PredictiveControl", f"forecast trusted again: {forecast_msg}"))
    ready_msg = (f"{f.nodes} nodes, {len(f.workloads)} workloads; {decided.mode}; "
                 + "; ".join([*decided.notes, *f.notes]))
    predictive = view.mode == "predictive"
    conditions = [
        condition(previous, "Ready", "True", "Reconciled", ready_msg.rstrip("; "), now, generation),
        condition(previous, "Degraded", "False", "TelemetryOk", "telemetry is fresh", now, generation),
        condition(previous, "ForecastHealthy", "True" if predictive else "False",
                  "Predictive" if predictive else ("BelowPersistence" if below_persistence else "Reactive"),
                  forecast_msg, now, generation),
        condition(previous, "Acting", "True" if acting else "False",
                  "Paused" if f.paused else "Shaving" if acting else "Idle", acting_msg, now, generation),
    ]
    paced = f.paced
    status = PowerPolicyStatus(
        observed_generation=generation, phase=phase, observed_watts=whole_watts(view.load_w),
        forecast_peak_watts=whole_watts(view.forecast_peak_w), peak_risk=view.peak_risk,
        conditions=[Condition.model_validate(c) for c in conditions], control_mode=view.mode,
        forecast_error_fraction=round(f.error, 4) if f.error is not None else None,
        forecast_coverage=round(f.coverage, 4) if f.coverage is not None else None,
        uncovered_watts=round(decided.uncovered_w, 1),
        battery_endurance_seconds=float(round(paced.endurance_s)) if paced is not None and math.isfinite(
            paced.endurance_s) else None,
    )
    return Explanation(status, events, said)


def status_fields(status: PowerPolicyStatus) -> dict[str, Any]:
    """The fields of ``status`` that were set, as the API server stores them (a field set to None
    clears it in a merge patch)."""
    return status.model_dump(by_alias=True, exclude_unset=True, mode="json")
