"""The planner's promises, as properties over generated clusters and as worked examples."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.planner import BatteryState, PlanInput, PlanLimits, Workload, plan
from gridshift.planner.charging import LOOKBACK_S, ChargeRule, PeakEnergyTracker, charge_ceiling, charge_target
from gridshift.planner.ladder import battery_available_w, restore_allowance_w
from gridshift.planner.tariff import PeakWindow, is_peak, seconds_of_day

POLICY = "site-a"
NOW = 10_000.0


@st.composite
def workloads(draw) -> tuple[Workload, ...]:
    out = []
    for i in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["Deployment", "StatefulSet", "Job"]))
        replicas = draw(st.integers(0, 12))
        suspended = kind == "Job" and draw(st.booleans())
        managed_by = draw(st.sampled_from([None, None, POLICY, "other-policy"]))
        original = None
        if kind != "Job" and managed_by is not None:
            original = replicas + draw(st.integers(0, 6))
        requested = None
        if kind == "Job" and managed_by == POLICY and not suspended and draw(st.booleans()):
            requested = NOW - draw(st.floats(0, 1000))
        out.append(Workload(
            kind=kind, namespace="ns", name=f"w{i}", replicas=replicas,
            watts_per_replica=draw(st.floats(50, 6000)), priority=draw(st.integers(-5, 5)),
            floor=draw(st.integers(0, 3)) if kind != "Job" else 0, protected=draw(st.booleans()),
            suspended=suspended, managed_by=managed_by, original_replicas=original,
            last_action_at=draw(st.one_of(st.none(), st.floats(NOW - 300, NOW))),
            checkpoint_requested_at=requested, checkpoint_completed=requested is not None and draw(st.booleans()),
        ))
    return tuple(out)


@st.composite
def inputs(draw, with_charge: bool = False) -> PlanInput:
    battery = None
    if with_charge or draw(st.booleans()):
        battery = BatteryState("ess", soc_fraction=draw(st.floats(0, 1)), capacity_wh=draw(st.floats(1e3, 1e6)),
                               max_discharge_w=draw(st.floats(1e3, 5e5)),
                               setpoint_w=draw(st.one_of(st.just(0.0), st.floats(-1e5, 0), st.floats(0, 2e5))),
                               managed_by=draw(st.sampled_from([None, POLICY])), soh_fraction=draw(st.floats(0.5, 1)),
                               max_charge_w=draw(st.floats(0, 1e5)),
                               last_charge_at=draw(st.one_of(st.none(), st.floats(NOW - 900, NOW))),
                               last_discharge_at=draw(st.one_of(st.none(), st.floats(NOW - 900, NOW))))
    charge = None
    if with_charge or draw(st.booleans()):
        charge = ChargeRule(off_peak=draw(st.booleans()), target_fraction=draw(st.floats(0, 1)),
                            max_charge_w=draw(st.one_of(st.none(), st.floats(1e3, 1e5))),
                            dwell_s=draw(st.sampled_from([0.0, 120.0, 600.0])))
    ladder = tuple(draw(st.permutations(["battery", "scaleDown", "suspend"])))
    limits = PlanLimits(cooldown_s=draw(st.floats(0, 120)), max_actions=draw(st.integers(1, 10)),
                        ramp_w_per_min=draw(st.floats(100, 1e5)), hysteresis=draw(st.floats(0, 0.3)),
                        reserve_fraction=draw(st.floats(0, 0.9)),
                        checkpoint_deadline_s=draw(st.sampled_from([0.0, 60.0, 300.0])),
                        on_timeout=draw(st.sampled_from(["suspend", "skip"])))
    expected = draw(st.floats(0, 2e5))
    near = draw(st.one_of(st.none(), st.floats(0, 1)))  # the bound up to the next period, a share of the whole
    return PlanInput(policy=POLICY, now=NOW, trigger_w=draw(st.floats(1e3, 1e5)),
                     expected_peak_w=expected, ladder=ladder, workloads=draw(workloads()),
                     battery=battery, limits=limits, period_s=15.0, charge=charge,
                     ramp_since=draw(st.one_of(st.none(), st.floats(NOW - 900, NOW))),
                     battery_peak_w=None if near is None else near * expected,
                     measured_w=draw(st.one_of(st.none(), st.floats(0, 2e5))), recent_peak_w=draw(st.floats(0, 2e5)))


def _by_key(inp: PlanInput) -> dict[str, Workload]:
    return {w.key: w for w in inp.workloads}


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_floors_protection_and_ownership_always_hold(inp: PlanInput) -> None:
    result = plan(inp)
    by_key = _by_key(inp)
    assert len(result.actions) <= inp.limits.max_actions
    for a in result.actions:
        if a.target.startswith("EnergyStorage/"):
            assert inp.battery is not None and inp.battery.managed_by in (None, POLICY)
            assert a.setpoint_w is not None
            assert a.setpoint_w <= battery_available_w(inp.battery, inp.limits, inp.horizon_s, inp.period_s) + 1e-6 \
                or a.expected_watts < 0, "discharge above what the reserve allows"
            continue
        w = by_key[a.target]
        assert not (w.protected and a.expected_watts > 0), f"shaved protected {a.target}"
        assert w.managed_by in (None, POLICY), f"touched {a.target}, which another policy changed"
        if a.verb == "scaleDown":
            assert a.replicas is not None and a.replicas >= w.floor, f"{a.target} below its floor"
            assert a.replicas < w.replicas
        if a.verb == "scaleUp":
            assert a.replicas is not None and w.original_replicas is not None
            assert a.replicas <= max(w.original_replicas, w.replicas), "restored above the recorded replicas"
        if a.verb in ("scaleDown", "checkpoint") or (a.verb == "suspend" and w.checkpoint_requested_at is None):
            assert not (w.last_action_at is not None and NOW - w.last_action_at < inp.limits.cooldown_s), \
                f"{a.target} acted on inside its cooldown"


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_lowest_priority_goes_first(inp: PlanInput) -> None:
    result = plan(inp)
    if result.mode != "shave":
        return
    by_key = _by_key(inp)
    for verb in ("scaleDown", "checkpoint"):
        prios = [by_key[a.target].priority for a in result.actions if a.verb == verb]
        assert prios == sorted(prios), f"{verb} actions out of priority order: {prios}"


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_shaving_never_exceeds_the_need_by_more_than_one_step(inp: PlanInput) -> None:
    result = plan(inp)
    if result.mode != "shave":
        return
    shaves = [a for a in result.actions if a.verb in ("discharge", "scaleDown", "checkpoint", "suspend")
              and a.expected_watts > 0 and a.target not in _pending_keys(inp)]
    if not shaves:
        return
    by_key = _by_key(inp)

    def step(a) -> float:
        if a.verb == "discharge":
            return 0.0
        w = by_key[a.target]
        return w.watts_per_replica if a.verb == "scaleDown" else w.watts

    total = sum(a.expected_watts for a in shaves)
    before_last = total - shaves[-1].expected_watts
    assert before_last < result.shortfall_w + 1e-6, "kept acting after the shortfall was covered"
    assert total - result.shortfall_w <= step(shaves[-1]) + 1e-6, "last action shaved more than one step beyond need"


def _pending_keys(inp: PlanInput) -> set[str]:
    return {w.key for w in inp.workloads if w.checkpoint_requested_at is not None}


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_restore_never_overshoots_the_ramp_or_the_headroom(inp: PlanInput) -> None:
    """Workloads come back within the ramp; the battery, which the next period can re-arm within its
    response time, winds down at once but only into the headroom the forecast up to then leaves."""
    result = plan(inp)
    storage = [a for a in result.actions if a.target.startswith("EnergyStorage/")]
    restored = -sum(a.expected_watts for a in result.actions if a.expected_watts < 0 and a not in storage)
    wound_down = -sum(a.expected_watts for a in storage if a.expected_watts < 0 and a.verb in ("idle", "discharge")
                      and a.reason.startswith("restore"))
    if result.mode == "restore":
        threshold = inp.trigger_w * (1 - inp.limits.hysteresis)
        assert restored <= restore_allowance_w(inp) + 1e-6
        assert restored <= threshold - inp.expected_peak_w + 1e-6 or restored == 0
        near = 0.0 if inp.battery_peak_w is None else max(0.0, inp.expected_peak_w - inp.battery_peak_w)
        assert restored + wound_down <= threshold - result.grid_peak_w + near + 1e-6 or wound_down == 0
    if result.mode in ("shave", "hold"):
        assert all(a.verb not in ("scaleUp", "resume") or a.expected_watts == 0 for a in result.actions)


def _charges(a) -> bool:
    return a.setpoint_w is not None and (a.setpoint_w < 0 or a.verb == "charge" or a.reason.startswith("stop charg"))


@settings(max_examples=600, deadline=None)
@given(inputs(with_charge=True))
def test_charging_is_off_peak_below_the_threshold_within_the_rating_and_the_dwell(inp: PlanInput) -> None:
    result = plan(inp)
    charges = [a for a in result.actions if a.verb == "charge"]
    if not charges:
        return
    assert len(charges) == 1 and inp.charge is not None and inp.battery is not None
    (a,) = charges
    b, rule = inp.battery, inp.charge
    assert rule.off_peak, "charged on-peak"
    assert result.mode in ("hold", "restore"), "charged while shaving"
    assert b.soc_fraction < rule.target_fraction, "charged past the target"
    assert a.setpoint_w is not None and a.setpoint_w < 0
    rating = b.max_charge_w if rule.max_charge_w is None else min(b.max_charge_w, rule.max_charge_w)
    assert -a.setpoint_w <= rating + 1e-6
    if b.setpoint_w >= 0:
        assert b.last_discharge_at is None or NOW - b.last_discharge_at >= rule.dwell_s, "charged inside the dwell"
    # Whatever else this period brings back, the grid stays under the restore threshold.
    threshold = inp.trigger_w * (1 - inp.limits.hysteresis)
    others = -sum(x.expected_watts for x in result.actions if x.expected_watts < 0 and x is not a)
    basis = max(inp.expected_peak_w, inp.recent_peak_w)
    assert basis + others + (-a.setpoint_w) <= threshold + 1e-6 * max(1.0, threshold)


@settings(max_examples=400, deadline=None)
@given(inputs(with_charge=True))
def test_a_shave_never_leaves_the_battery_charging(inp: PlanInput) -> None:
    result = plan(inp)
    if result.mode != "shave" or inp.battery is None or "battery" not in inp.ladder:
        return
    touched = [a for a in result.actions if a.target == inp.battery.key]
    for a in touched:
        assert a.setpoint_w is not None and a.setpoint_w >= 0, "charging during a shave"
    if inp.battery.setpoint_w < 0 and inp.battery.managed_by in (None, POLICY) and result.actions:
        assert touched and result.actions[0] is touched[0], "stopping the charge comes before any other rung"


# --- worked examples ----------------------------------------------------------------------------------------------


def _dep(name: str, replicas: int, wpr: float = 1000, **kw) -> Workload:
    return Workload("Deployment", "ns", name, replicas, wpr, **kw)


def _job(name: str, replicas: int, wpr: float = 5600, **kw) -> Workload:
    return Workload("Job", "ns", name, replicas, wpr, suspendable=True, **kw)


def test_battery_first_then_lowest_priority_inference() -> None:
    inp = PlanInput(POLICY, NOW, trigger_w=50_000, expected_peak_w=60_000,
                    ladder=("battery", "scaleDown", "suspend"),
                    workloads=(_dep("chat", 6, priority=10), _dep("batch-embed", 4, priority=1, floor=1)),
                    battery=BatteryState("ess", soc_fraction=0.6, capacity_wh=2_000, max_discharge_w=4_000))
    result = plan(inp)
    assert result.mode == "shave"
    assert [(a.verb, a.target) for a in result.actions] == [
        ("discharge", "EnergyStorage/ess"), ("scaleDown", "Deployment/ns/batch-embed"),
        ("scaleDown", "Deployment/ns/chat")]
    assert result.actions[0].setpoint_w == 4_000
    assert result.actions[1].replicas == 1           # floor 1
    assert result.actions[2].replicas == 3           # 10 kW - 4 kW battery - 3 kW = 3 kW more


def test_workloads_shed_for_their_own_forecast_and_the_battery_covers_the_bound() -> None:
    workloads = (_dep("chat", 6, priority=10), _dep("batch-embed", 4, priority=1))
    battery = BatteryState("ess", soc_fraction=0.6, capacity_wh=2_000, max_discharge_w=4_000)
    ladder = ("battery", "scaleDown", "suspend")
    false_alarm = plan(PlanInput(POLICY, NOW, 50_000, 60_000, ladder, workloads, battery, workload_peak_w=52_000))
    assert [a.verb for a in false_alarm.actions] == ["discharge"], \
        "the median needs 2 kW, which the battery's 4 kW covers: no replica is shed for the bound's 10 kW"
    assert false_alarm.uncovered_w == pytest.approx(6_000), "what the bound asks beyond the battery is reported"
    sustained = plan(PlanInput(POLICY, NOW, 50_000, 60_000, ladder, workloads, battery, workload_peak_w=58_000))
    assert [(a.verb, a.replicas) for a in sustained.actions] == [("discharge", None), ("scaleDown", 0)], \
        "the median needs 8 kW: 4 kW from the battery, 4 replicas of 1 kW"


def test_the_battery_plans_against_the_bound_up_to_the_next_period() -> None:
    """The battery is set again every period, so its setpoint follows the bound up to then; its
    headroom still counts against the whole horizon's bound, so no replica is shed for a later peak
    it can cover when it comes, and a discharge above the near bound comes down even while shaving."""
    workloads = (_dep("chat", 6, 5_000, priority=10),)
    ladder = ("battery", "scaleDown")
    battery = BatteryState("ess", 0.8, 100_000, 20_000, managed_by=POLICY)
    common = dict(ladder=ladder, workloads=workloads, trigger_w=100_000, expected_peak_w=130_000)
    early = plan(PlanInput(POLICY, NOW, battery=battery, battery_peak_w=110_000, workload_peak_w=125_000, **common))
    assert early.mode == "shave"
    assert [(a.verb, a.setpoint_w, a.replicas) for a in early.actions] == [
        ("discharge", pytest.approx(10_000), None), ("scaleDown", None, 5)], \
        "10 kW now for the next period; the median's 25 kW is 20 kW of battery and one 5 kW replica"
    ahead = plan(PlanInput(POLICY, NOW, battery=replace(battery, max_discharge_w=50_000), battery_peak_w=110_000,
                           **common))
    assert [(a.verb, a.setpoint_w) for a in ahead.actions] == [("discharge", pytest.approx(10_000))]
    assert ahead.uncovered_w == 0, "the 50 kW battery covers the whole bound when the later peak comes"
    held = plan(PlanInput(POLICY, NOW, battery=replace(battery, max_discharge_w=50_000, setpoint_w=25_000),
                          battery_peak_w=110_000, **common))
    assert held.mode == "shave"
    assert [(a.verb, a.setpoint_w) for a in held.actions] == [("discharge", pytest.approx(10_000))]
    whole = plan(PlanInput(POLICY, NOW, battery=replace(battery, max_discharge_w=50_000), **common))
    assert [(a.verb, a.setpoint_w) for a in whole.actions] == [("discharge", pytest.approx(30_000))], \
        "without a near bound the battery covers the whole one, as before"


def test_the_battery_covers_the_whole_shortfall_while_a_checkpoint_is_in_flight() -> None:
    asked = _job("train", 2, managed_by=POLICY, checkpoint_requested_at=NOW - 30, last_action_at=NOW - 30)
    battery = BatteryState("ess", soc_fraction=0.6, capacity_wh=20_000, max_discharge_w=20_000)
    result = plan(PlanInput(POLICY, NOW, 10_000, 20_000, ("battery", "suspend"), (asked,), battery))
    assert [(a.verb, a.setpoint_w) for a in result.actions] == [("discharge", 10_000)], \
        "the job runs until its checkpoint completes: the battery holds the cap meanwhile, no second job is asked"
    done = Workload(**{**asked.__dict__, "checkpoint_completed": True})
    covered = BatteryState("ess", soc_fraction=0.6, capacity_wh=20_000, max_discharge_w=20_000, setpoint_w=10_000,
                           managed_by=POLICY)
    held = plan(PlanInput(POLICY, NOW, 10_000, 20_000, ("battery", "suspend"), (done,), covered,
                          workload_peak_w=12_000))
    assert [a.verb for a in held.actions] == [], "the battery already covers what the median needs: no suspension"
    needed = plan(PlanInput(POLICY, NOW, 10_000, 35_000, ("battery", "suspend"), (done,), covered))
    assert [a.verb for a in needed.actions] == ["discharge", "suspend"], "15 kW more: the last 10 kW, then the job"


def test_a_battery_that_would_not_last_hands_its_sustained_excess_to_the_workloads() -> None:
    """A battery covering a sustained excess exactly (the grid at the trigger, nothing to shave) drains
    to its reserve and lets the later peaks through. Paced, it counts for the workloads only with what
    it sustains for its endurance; they take over the rest while it still has energy for the spikes."""
    jobs = (_job("low", 1, 6_000, priority=0), _job("high", 1, 6_000, priority=5))
    battery = BatteryState("ess", 0.5, 40_000, 40_000, setpoint_w=20_000, managed_by=POLICY)
    steady = PlanInput(POLICY, NOW, trigger_w=100_000, expected_peak_w=120_000, ladder=("battery", "suspend"),
                       workloads=jobs, battery=battery, measured_w=120_000)
    assert plan(steady).actions == (), "unpaced, a battery holding the grid at the trigger needs no help"
    paced = plan(replace(steady, battery_credit_w=12_000))
    assert paced.mode == "shave"
    assert [(a.verb, a.target) for a in paced.actions] == [("checkpoint", "Job/ns/low"), ("checkpoint", "Job/ns/high")]
    assert "would not last" in paced.actions[0].reason and "12.0 kW" in paced.actions[0].reason
    enough = plan(replace(steady, battery_credit_w=20_000))
    assert enough.actions == (), "a battery that sustains its discharge keeps it"
    spike = plan(replace(steady, expected_peak_w=125_000, battery_credit_w=12_000))
    assert (spike.actions[0].verb, spike.actions[0].setpoint_w) == ("discharge", 25_000), \
        "the battery still answers the spike at once; the workloads shed what it cannot sustain"
    assert [a.target for a in spike.actions[1:]] == ["Job/ns/low", "Job/ns/high"]


def test_battery_is_never_discharged_below_its_reserve() -> None:
    battery = BatteryState("ess", soc_fraction=0.2, capacity_wh=100_000, max_discharge_w=50_000, setpoint_w=30_000,
                           managed_by=POLICY)
    inp = PlanInput(POLICY, NOW, trigger_w=10_000, expected_peak_w=40_000, ladder=("battery",), battery=battery,
                    limits=PlanLimits(reserve_fraction=0.2))
    result = plan(inp)
    assert result.actions[0].verb == "idle" and result.actions[0].setpoint_w == 0
    assert result.uncovered_w == 30_000


def test_job_checkpoints_then_suspends_when_confirmed_or_at_the_deadline() -> None:
    limits = PlanLimits(checkpoint_deadline_s=120)
    train = _job("train", 2)
    first = plan(PlanInput(POLICY, NOW, 10_000, 20_000, ("suspend",), (train,), limits=limits))
    assert [(a.verb, a.checkpoint) for a in first.actions] == [("checkpoint", True)]

    asked = Workload(**{**train.__dict__, "managed_by": POLICY, "checkpoint_requested_at": NOW, "last_action_at": NOW})
    waiting = plan(PlanInput(POLICY, NOW + 30, 10_000, 20_000, ("suspend",), (asked,), limits=limits))
    assert waiting.actions == (), "the pending checkpoint already covers the shortfall"

    done = Workload(**{**asked.__dict__, "checkpoint_completed": True})
    assert [a.verb for a in plan(PlanInput(POLICY, NOW + 30, 10_000, 20_000, ("suspend",), (done,),
                                           limits=limits)).actions] == ["suspend"]
    late = plan(PlanInput(POLICY, NOW + 121, 10_000, 20_000, ("suspend",), (asked,), limits=limits))
    assert [a.verb for a in late.actions] == ["suspend"]
    skip = plan(PlanInput(POLICY, NOW + 121, 10_000, 20_000, ("suspend",), (asked,),
                          limits=PlanLimits(checkpoint_deadline_s=120, on_timeout="skip")))
    assert [a.verb for a in skip.actions] == [], "onTimeout=skip leaves the job running"


def test_restore_runs_the_ladder_backwards_within_the_ramp() -> None:
    scaled = _dep("chat", 2, managed_by=POLICY, original_replicas=6, last_action_at=NOW - 600)
    suspended = _job("train", 1, wpr=3_000, suspended=True, managed_by=POLICY, last_action_at=NOW - 600)
    battery = BatteryState("ess", 0.5, 10_000, 5_000, setpoint_w=2_000, managed_by=POLICY)
    inp = PlanInput(POLICY, NOW, trigger_w=50_000, expected_peak_w=20_000, ladder=("battery", "scaleDown", "suspend"),
                    workloads=(scaled, suspended), battery=battery, period_s=15,
                    limits=PlanLimits(ramp_w_per_min=20_000, max_actions=5), ramp_since=NOW - 15)
    result = plan(inp)
    assert result.mode == "restore"
    assert result.restore_allowance_w == 5_000
    # Suspended job (3 kW) first, then 2 of the 4 missing replicas (2 kW); the battery waits.
    assert [(a.verb, a.target, a.replicas) for a in result.actions] == [
        ("resume", "Job/ns/train", None), ("scaleUp", "Deployment/ns/chat", 4)]


def test_hysteresis_band_holds() -> None:
    scaled = _dep("chat", 2, managed_by=POLICY, original_replicas=6)
    result = plan(PlanInput(POLICY, NOW, trigger_w=10_000, expected_peak_w=9_800, ladder=("scaleDown",),
                            workloads=(scaled,), limits=PlanLimits(hysteresis=0.05)))
    assert result.mode == "hold" and result.actions == ()


def test_objects_changed_by_another_policy_are_left_alone() -> None:
    theirs = _dep("chat", 6, managed_by="other-policy", original_replicas=8)
    mine = _dep("embed", 6)
    result = plan(PlanInput(POLICY, NOW, 10_000, 30_000, ("scaleDown",), (theirs, mine)))
    assert {a.target for a in result.actions} == {"Deployment/ns/embed"}
    assert result.uncovered_w == 20_000 - 6 * 1000 + 0  # embed goes to 0, 14 kW left uncovered


def test_battery_headroom_is_not_spent_on_restoring_workloads() -> None:
    """Load 11 kW, battery covering 3 kW: the grid sees 8 kW, under the restore threshold, yet bringing
    inference back would only move the peak onto the battery. So inference stays down, and the battery
    only winds down to the restore threshold (it does not drain on headroom nobody uses); once the
    load itself falls, workloads come back first, then the battery winds down into what is left of the
    grid headroom."""
    scaled = _dep("chat", 2, managed_by=POLICY, original_replicas=4)
    battery = BatteryState("ess", 0.8, 10_000, 3_000, setpoint_w=3_000, managed_by=POLICY)
    common = dict(ladder=("battery", "scaleDown"), workloads=(scaled,), battery=battery,
                  limits=PlanLimits(ramp_w_per_min=100_000, max_actions=5, hysteresis=0.05), ramp_since=NOW - 60)
    high = plan(PlanInput(POLICY, NOW, trigger_w=9_000, expected_peak_w=11_000, **common))
    assert high.mode == "restore"
    assert [(a.verb, a.setpoint_w) for a in high.actions] == [("discharge", pytest.approx(3_000 - 550))]

    low = plan(PlanInput(POLICY, NOW, trigger_w=9_000, expected_peak_w=6_000, **common))
    assert [(a.verb, a.replicas) for a in low.actions][:1] == [("scaleUp", 4)]
    assert (low.actions[1].verb, low.actions[1].setpoint_w) == ("idle", 0)  # 6 + 2 kW of load fit the grid alone


def test_battery_comes_down_to_the_trigger_in_the_hysteresis_band() -> None:
    """Workloads hold in the band between the restore threshold and the trigger, but a discharge held
    there spends energy on load that already fits: the battery comes down to what keeps the forecast
    grid peak at the trigger, except within a deadband of 5% of its rating."""
    battery = BatteryState("ess", 0.8, 100_000, 20_000, setpoint_w=10_000, managed_by=POLICY)
    common = dict(ladder=("battery", "scaleDown"), battery=battery, limits=PlanLimits(hysteresis=0.05))
    band = plan(PlanInput(POLICY, NOW, trigger_w=100_000, expected_peak_w=106_000, **common))
    assert band.mode == "hold"
    assert [(a.verb, a.setpoint_w) for a in band.actions] == [("discharge", pytest.approx(6_000))]
    close = plan(PlanInput(POLICY, NOW, trigger_w=100_000, expected_peak_w=109_500, **common))
    assert close.mode == "hold" and close.actions == ()


def _charging_input(**kw) -> PlanInput:
    battery = kw.pop("battery", BatteryState("ess", 0.4, 100_000, 50_000, max_charge_w=40_000,
                                             last_discharge_at=NOW - 3_600))
    return PlanInput(POLICY, NOW, trigger_w=kw.pop("trigger_w", 100_000), expected_peak_w=kw.pop("peak", 60_000),
                     ladder=("battery", "scaleDown"), battery=battery, period_s=15,
                     limits=PlanLimits(hysteresis=0.05), charge=kw.pop("charge", ChargeRule(True, 0.9, dwell_s=300)),
                     **kw)


def test_off_peak_headroom_charges_the_battery_toward_its_target() -> None:
    result = plan(_charging_input())
    (a,) = result.actions
    assert (a.verb, a.setpoint_w) == ("charge", -35_000)  # 95 kW restore threshold - 60 kW load
    assert "toward 90%" in a.reason and "min to go" in a.reason


def test_no_charging_on_peak_and_a_running_charge_is_stopped() -> None:
    charging = BatteryState("ess", 0.4, 100_000, 50_000, setpoint_w=-20_000, managed_by=POLICY, max_charge_w=40_000)
    result = plan(_charging_input(battery=charging, charge=ChargeRule(False, 0.9)))
    assert [(a.verb, a.setpoint_w) for a in result.actions] == [("idle", 0.0)]
    assert "on-peak tariff" in result.actions[0].reason


def test_charging_plans_below_the_recent_peak_not_just_the_forecast() -> None:
    """A forecast dip is no reason to add 35 kW of optional load when the load touched 90 kW a moment ago."""
    result = plan(_charging_input(charge=ChargeRule(True, 0.9, dwell_s=300), recent_peak_w=90_000))
    assert [(a.verb, a.setpoint_w) for a in result.actions] == [("charge", -5_000)]


def test_charging_waits_out_the_dwell_after_a_discharge() -> None:
    just_discharged = BatteryState("ess", 0.4, 100_000, 50_000, max_charge_w=40_000, last_discharge_at=NOW - 60)
    result = plan(_charging_input(battery=just_discharged))
    assert result.actions == () and any("dwell" in n for n in result.notes)


def test_a_forecast_peak_stops_the_charge_and_discharges_at_once() -> None:
    charging = BatteryState("ess", 0.5, 100_000, 50_000, setpoint_w=-30_000, managed_by=POLICY, max_charge_w=40_000,
                            last_charge_at=NOW)
    small = plan(_charging_input(battery=charging, peak=90_000, workloads=(_dep("chat", 10, priority=1),)))
    # 90 kW + 30 kW of charging on a 100 kW trigger: stopping the charge covers the 20 kW needed.
    assert [(a.verb, a.setpoint_w) for a in small.actions] == [("idle", 0.0)]
    bigger = plan(_charging_input(battery=charging, peak=110_000, workloads=(_dep("chat", 10, wpr=2_000),)))
    # 40 kW needed: 30 from the charge, 10 from discharge right away (the dwell never delays a shave).
    assert [(a.verb, a.setpoint_w) for a in bigger.actions] == [("idle", 0.0), ("discharge", 10_000.0)]
    assert "stop charging" in bigger.actions[0].reason


def test_state_of_health_shrinks_what_the_battery_can_give() -> None:
    fresh = BatteryState("ess", 0.5, 10_000, 1e9)
    worn = BatteryState("ess", 0.5, 10_000, 1e9, soh_fraction=0.5)
    limits = PlanLimits(reserve_fraction=0.2)
    assert battery_available_w(worn, limits, 3600, 15) == battery_available_w(fresh, limits, 3600, 15) / 2


def test_the_target_holds_the_largest_recent_peak_above_the_reserve() -> None:
    tracker = PeakEnergyTracker(window_s=3_600)
    for t in range(0, 600):  # 5 minutes 12 kW over a 10 kW trigger = 166.7 Wh, then quiet
        tracker.observe(float(t), 12_000 if 100 <= t < 400 else 5_000, 10_000)
    assert tracker.largest_wh() == pytest.approx(2_000 * 300 / 3600, rel=0.01)
    assert charge_target(0.2, tracker.largest_wh(), 1_000) == pytest.approx(0.2 + 1.25 * 0.1667, rel=0.01)
    assert charge_target(0.2, None, 1_000, ceiling=0.95) == 0.95, "nothing seen yet: be ready for anything"
    tracker.observe(5_000.0, 5_000, 10_000)
    assert tracker.largest_wh() is None, "forgotten after the window"


def test_a_charge_fits_under_the_load_plus_the_largest_rise_a_period_held_in_the_lookback() -> None:
    """A job that steps from 6 to 9 kW once a minute: a charge leaves room for the 3 kW step (it stops
    at the next period once the grid reaches the trigger), not for the 9 kW of the whole lookback."""
    n = int(LOOKBACK_S)
    steps = np.where(np.arange(n) % 60 < 20, 9_000.0, 6_000.0)
    steps[-10:] = 6_000.0
    assert charge_ceiling(steps, 1.0, 5.0) == pytest.approx(9_000.0), "6 kW now plus the 3 kW step"
    flat = np.full(n, 6_000.0)
    flat[:30] = 12_000.0  # a surge that fell: it rose before the lookback started
    assert charge_ceiling(flat, 1.0, 5.0) == pytest.approx(6_000.0)
    short = np.array([9.0, 1.0, 2.0, np.nan, 3.0])
    assert charge_ceiling(short, 1.0, 5.0) == 9.0, "less history than the lookback: the highest load measured"
    assert charge_ceiling(np.array([np.nan]), 1.0, 5.0) == 0.0


def test_tariff_windows_wrap_midnight_follow_days_and_time_zones() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo
    evening = PeakWindow(seconds_of_day("17:00"), seconds_of_day("21:00"), frozenset(range(5)))
    night = PeakWindow(seconds_of_day("22:00"), seconds_of_day("06:00:30"))

    def at(text: str, tz: str = "UTC") -> float:
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()

    assert is_peak([evening], "UTC", at("2026-11-23T18:00"))           # Monday
    assert not is_peak([evening], "UTC", at("2026-11-28T18:00"))       # Saturday
    assert not is_peak([evening], "UTC", at("2026-11-23T21:00"))       # end is exclusive
    assert is_peak([night], "UTC", at("2026-11-24T05:59"))
    assert is_peak([night], "UTC", at("2026-11-24T06:00:29"))
    assert not is_peak([night], "UTC", at("2026-11-24T06:00:30"))
    assert is_peak([evening], "America/Chicago", at("2026-11-23T18:00", "America/Chicago"))
    assert not is_peak([evening], "America/Chicago", at("2026-11-23T18:00"))  # noon in Chicago
    assert not is_peak([], "UTC", at("2026-11-23T18:00")), "no windows: always off-peak"
    for bad in ("25:00", "12:60", "noon", "12:00:61"):
        with pytest.raises(ValueError, match=bad):
            seconds_of_day(bad)
