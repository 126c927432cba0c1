"""The chaos suite's audit (devcluster.chaos), without a cluster: what counts as a lost object, an
unrecorded or doubled action, and a crossing caused by a restore."""

from __future__ import annotations

import random

import pytest

from gridshift.devcluster.chaos import FAULTS, Change, Record, change_of, explain, fault_plan, lost, own_crossings

CHAT = "Deployment/ns/chat"
JOB = "Job/ns/pretrain"


def test_a_fault_plan_is_the_seeds_and_in_time_order() -> None:
    plan = fault_plan(random.Random(3), 10, 50.0)
    assert plan == fault_plan(random.Random(3), 10, 50.0)
    assert len(plan) == 10 and [f.at_s for f in plan] == sorted(f.at_s for f in plan)
    assert all(0 <= f.at_s <= 50 and 1 <= f.lasts_s <= 8 and f.kind in FAULTS for f in plan)
    assert {f.kind for f in fault_plan(random.Random(0), 200, 50.0)} == set(FAULTS)
    with pytest.raises(ValueError, match="reboot"):
        fault_plan(random.Random(0), 3, 50.0, kinds=("kill", "reboot"))


def test_changes_are_read_from_two_states() -> None:
    assert change_of(CHAT, (4, False), (3, False), 1.0) == Change(1.0, CHAT, "scaleDown")
    assert change_of(CHAT, (3, False), (4, False), 2.0) == Change(2.0, CHAT, "scaleUp")
    assert change_of(JOB, (None, False), (None, True), 3.0) == Change(3.0, JOB, "suspend")
    assert change_of(JOB, (None, True), (None, False), 4.0) == Change(4.0, JOB, "resume")
    assert change_of(CHAT, (4, False), (4, False), 5.0) is None


def test_each_recorded_action_explains_one_change() -> None:
    records = [Record(10.0, CHAT, "scaleDown"), Record(20.0, CHAT, "scaleUp")]
    changes = [Change(10.4, CHAT, "scaleDown"), Change(20.3, CHAT, "scaleUp")]
    assert explain(changes, records) == ([], [])
    # The same scale-down applied again with no new decision: doubled.
    unrecorded, doubled = explain([*changes, Change(12.0, CHAT, "scaleDown")], records)
    assert unrecorded == [] and doubled == [Change(12.0, CHAT, "scaleDown")]
    # A change no action of that target and direction explains, or one recorded only long after it.
    unrecorded, doubled = explain([Change(5.0, JOB, "suspend"), Change(1.0, CHAT, "scaleUp")], records)
    assert unrecorded == [Change(1.0, CHAT, "scaleUp"), Change(5.0, JOB, "suspend")] and doubled == []
    # An Intended record and its Applied record are one action (the same time, target and verb).
    assert explain([Change(10.4, CHAT, "scaleDown")], [records[0], Record(10.0, CHAT, "scaleDown")]) == ([], [])


def test_an_object_is_lost_unless_back_at_its_original_without_gridshifts_records() -> None:
    originals = {CHAT: (4, False), JOB: (None, False)}
    assert lost(originals, {CHAT: (4, False), JOB: (None, False)}, []) == []
    assert lost(originals, {CHAT: (3, False), JOB: (None, False)}, []) == [CHAT]
    assert lost(originals, {CHAT: (4, False), JOB: (None, True)}, [CHAT]) == [CHAT, JOB]


def test_a_crossing_is_the_restores_only_when_the_site_was_under_the_cap_before_it() -> None:
    power = [(float(t), 7000.0) for t in range(0, 10)] + [(float(t), 8000.0) for t in range(10, 14)] + \
            [(float(t), 7000.0) for t in range(14, 40)]
    assert own_crossings(power, 7500.0, [Change(9.5, CHAT, "scaleUp")]) == [(10.0, 8000.0), (11.0, 8000.0),
                                                                           (12.0, 8000.0), (13.0, 8000.0)]
    assert own_crossings(power, 7500.0, [Change(11.5, CHAT, "scaleUp")]) == []  # already over the cap
    assert own_crossings(power, 7500.0, [Change(30.0, CHAT, "scaleUp")]) == []
