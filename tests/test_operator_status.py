"""What a control period reports, without a cluster: conditions, action records, Events."""

from __future__ import annotations

from gridshift.actuators.kubernetes import Outcome
from gridshift.operator.status import action_record, condition, interrupted, report_outcome, shaved_watts
from gridshift.planner import Action, Workload

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
    suspended = Workload("Job", "ml", "train", 4, 700.0, suspended=True)
    running = Workload("Job", "ml", "eval", 2, 700.0)
    assert shaved_watts([scaled, suspended, running]) == 3 * 300.0 + 4 * 700.0
