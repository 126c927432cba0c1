"""What a control period reports, without a cluster: conditions, action records, Events."""

from __future__ import annotations

import json

from gridshift.actuators.kubernetes import Outcome
from gridshift.api.powerpolicy import PowerPolicySpec, PowerPolicyStatus
from gridshift.operator.status import (
    PeriodFacts,
    action_record,
    condition,
    explain,
    interrupted,
    report_outcome,
    shaved_watts,
    status_fields,
)
from gridshift.planner import Action, Workload
from gridshift.planner.ladder import BatteryState, Plan
from gridshift.planner.outlook import Outlook
from gridshift.planner.skill import Skill

T0 = 1_800_000_000.0


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = condition([], "Ready", "True", "Reconciled", "ok", T0, 3)
    later = condition([first], "Ready", "True", "Reconciled", "still ok", T0 + 60, 4)
    assert later["lastTransitionTime"] == first["lastTransitionTime"] and later["observedGeneration"] == 4
    flipped = condition([later], "Ready", "False", "PrometheusUnreachable", "down", T0 + 120, 4)
    assert flipped["lastTransitionTime"] != first["lastTransitionTime"]


def test_a_condition_message_is_bounded_as_the_api_requires() -> None:
    assert len(condition([], "Ready", "True", "Reconciled", "x" * 40000, T0, None)["message"]) == 32000


def test_an_applied_action_is_recorded_with_an_event_on_its_object() -> None:
    action = Action("scaleDown", "scaleDown", "Deployment/ml/chat", 600.0, "forecast 11 kW over 10 kW", replicas=2)
    event, record = report_outcome(Outcome(action, True, "scaled Deployment/ml/chat 4 -> 2"), dry=False, now=T0)
    assert (event.type, event.reason) == ("Normal", "ScaleDown") and event.target is not None
    assert record is not None and record["outcome"] == "Applied" and record["expectedWatts"] == 600.0


def test_a_skipped_action_is_a_warning_and_no_record() -> None:
    action = Action("suspend", "suspend", "Job/ml/train", 2800.0, "peak")
    event, record = report_outcome(Outcome(action, False, "Job/ml/train: already managed by PowerPolicy b"),
                                   dry=False, now=T0)
    assert (event.type, event.reason, record) == ("Warning", "ActionSkipped", None)


def test_a_dry_run_reports_without_naming_an_object_to_change() -> None:
    action = Action("battery", "discharge", "EnergyStorage/ess", 5000.0, "peak", setpoint_w=5000.0)
    event, record = report_outcome(Outcome(action, False, "dry-run: would discharge EnergyStorage/ess"),
                                   dry=True, now=T0)
    assert event.reason == "DryRun" and event.target is None
    assert record is not None and record["outcome"] == "Reported" and record["dryRun"] is True


def test_intended_records_left_by_a_stopped_operator_become_interrupted_with_a_warning() -> None:
    done = action_record(Action("scaleDown", "scaleDown", "Deployment/ml/a", 300.0, "x", replicas=1), False, T0,
                         "Applied")
    left = action_record(Action("suspend", "suspend", "Job/ml/b", 900.0, "x"), False, T0 + 5, "Intended")
    records, events = interrupted([done, left])
    assert [r["outcome"] for r in records] == ["Applied", "Interrupted"]
    assert len(events) == 1 and events[0].reason == "ActionInterrupted" and "Job/ml/b" in events[0].message


def test_shaved_watts_counts_replicas_below_the_original_and_suspended_jobs() -> None:
    scaled = Workload("Deployment", "ml", "chat", 2, 300.0, original_replicas=5)
    suspended = Workload("Job", "ml", "train", 4, 700.0, suspended=True, suspendable=True)
    running = Workload("Job", "ml", "eval", 2, 700.0, suspendable=True)
    assert shaved_watts([scaled, suspended, running]) == 3 * 300.0 + 4 * 700.0


SPEC = PowerPolicySpec.model_validate({"budget": {"capWatts": 10000}})
PREDICTIVE = Outlook(load_w=9_812.6, expected_peak_w=11_000.0, forecast_peak_w=1_234_567.6, median_peak_w=10_500.0,
                     peak_risk=0.4, mode="predictive", reason="")
REACTIVE = Outlook(load_w=9_812.6, expected_peak_w=9_812.6, forecast_peak_w=None, median_peak_w=None,
                   peak_risk=None, mode="reactive", reason="forecast error 40% of observed power exceeds 25%")


def _facts(view: Outlook = PREDICTIVE, mode: str = "hold", workloads: tuple[Workload, ...] = (),
           battery: BatteryState | None = None, dry_run: bool = False, skill: Skill | None = None,
           paused: bool = False) -> PeriodFacts:
    spec = SPEC.model_copy(update={"safety": SPEC.safety.model_copy(update={"dry_run": dry_run})})
    shave = Action("scaleDown", "scaleDown", "Deployment/ml/chat", 600.0, "peak", replicas=2)
    return PeriodFacts(policy="site", spec=spec, generation=7, now=T0, force_dry_run=False, nodes=4,
                       workloads=list(workloads), notes=["1 node silent"], battery=battery, view=view,
                       plan=Plan(mode, 11_000.0, 1_000.0, (shave,) if mode == "shave" else ()),  # type: ignore[arg-type]
                       skill=skill, paused=paused)


def test_the_status_is_a_valid_power_policy_status_with_whole_watts_for_kubectl() -> None:
    fields = status_fields(explain(_facts(), [], None).status)
    PowerPolicyStatus.model_validate(fields)  # what the e2e reads back validates too
    # kubectl prints a number column with a fraction in exponent notation: the watts go out whole
    assert json.dumps(fields["observedWatts"]) == "9813" and json.dumps(fields["forecastPeakWatts"]) == "1234568"
    assert fields["observedGeneration"] == 7 and fields["controlMode"] == "predictive"
    ready = next(c for c in fields["conditions"] if c["type"] == "Ready")
    assert ready["observedGeneration"] == 7 and "4 nodes" in ready["message"] and "1 node silent" in ready["message"]
    # unknown figures are sent as null, which a merge patch turns into removing the stale value
    assert fields["forecastErrorFraction"] is None and fields["batteryEnduranceSeconds"] is None


def test_the_phase_follows_what_the_policy_holds_changed() -> None:
    scaled = Workload("Deployment", "ml", "chat", 2, 300.0, original_replicas=5, managed_by="site")
    other = Workload("Deployment", "ml", "web", 2, 300.0, original_replicas=5, managed_by="another")
    assert explain(_facts(mode="hold"), [], None).status.phase == "Watching"
    holding = explain(_facts(mode="hold", workloads=(scaled,)), [], None).status
    assert holding.phase == "Acting"
    acting = next(c for c in holding.conditions if c.type == "Acting")
    assert acting.status == "True" and "Deployment/ml/chat" in acting.message
    assert explain(_facts(mode="restore", workloads=(scaled,)), [], None).status.phase == "Restoring"
    assert explain(_facts(mode="restore", workloads=(other,)), [], None).status.phase == "Watching"
    discharging = BatteryState("ess", 0.8, 10_000.0, 5_000.0, setpoint_w=2_000.0, managed_by="site")
    assert explain(_facts(mode="restore", battery=discharging), [], None).status.phase == "Restoring"


def test_a_dry_run_says_what_it_would_shave() -> None:
    status = explain(_facts(mode="shave", dry_run=True), [], None).status
    acting = next(c for c in status.conditions if c.type == "Acting")
    assert status.phase == "Acting" and acting.message.startswith("would shave 600 W (dry-run")


def test_reactive_control_is_one_warning_while_its_reason_holds_and_a_notice_when_it_ends() -> None:
    first = explain(_facts(REACTIVE), [], None)
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "ReactiveControl")]
    healthy = next(c for c in first.status.conditions if c.type == "ForecastHealthy")
    assert (healthy.status, healthy.reason) == ("False", "Reactive") and first.status.control_mode == "reactive"
    again = explain(_facts(REACTIVE), status_fields(first.status)["conditions"], first.reactive_said)
    assert again.events == []
    back = explain(_facts(), status_fields(again.status)["conditions"], again.reactive_said)
    assert [(e.type, e.reason) for e in back.events] == [("Normal", "PredictiveControl")] and back.reactive_said is None


def test_the_skill_gate_is_reported_as_below_persistence_once_while_its_ratios_move() -> None:
    def gated(ratio: float) -> PeriodFacts:
        skill = Skill(False, f"forecast median error {ratio:.2f}x persistence's", 40, median_ratio=ratio)
        view = Outlook(9_000.0, 9_000.0, None, None, None, "reactive", skill.reason)
        return _facts(view, skill=skill)
    first = explain(gated(1.31), [], None)
    healthy = next(c for c in first.status.conditions if c.type == "ForecastHealthy")
    assert healthy.reason == "BelowPersistence" and len(first.events) == 1
    assert explain(gated(1.27), [], first.reactive_said).events == []


def test_a_paused_policy_says_what_it_would_do_and_that_it_changes_nothing() -> None:
    status = explain(_facts(mode="shave", paused=True), [], None).status
    acting = next(c for c in status.conditions if c.type == "Acting")
    assert status.phase == "Paused" and acting.reason == "Paused"
    assert "would scaleDown Deployment/ml/chat" in acting.message and "gridshift.io/paused" in acting.message
    PowerPolicyStatus.model_validate(status_fields(status))
