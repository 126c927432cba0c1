"""The response ladder as a pure function: ``plan(PlanInput) -> Plan``.

Conventions: power is in watts, time in seconds since the epoch. The *grid peak* is the forecast
upper bound of the governed load minus what the battery already discharges. When it exceeds the
trigger the planner *shaves*: it walks the ladder cheapest rung first (battery, scale down,
checkpoint-then-suspend) and stops as soon as the shortfall is covered, so no plan overshoots what
is needed by more than one step (one replica, one Job, never a fraction of a battery). The
workload rungs may plan against a lower forecast than the battery (``workload_peak_w``, e.g. the
median): the battery answers within its response time and covers the rest of the bound, whereas a
replica drains and a checkpoint takes minutes, so shedding work on every upper-bound false alarm
costs GPU-hours for nothing. The battery's setpoint may also look less far ahead
(``battery_peak_w``, the bound up to the next period, when it is set again) while its headroom
counts against the whole bound. When the grid peak falls below ``trigger x (1 - hysteresis)`` it
*restores*: the ladder backwards, highest priority first, and never more watts than the ramp
allows since the last change. In between the workloads hold and the battery comes down to what
the forecast needs. Protected objects, objects another policy changed, objects in cooldown and
replicas below a floor are never touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from gridshift.planner.charging import ChargeRule, hours_to_charge

Verb = Literal["discharge", "charge", "idle", "scaleDown", "scaleUp", "checkpoint", "suspend", "resume"]
Mode = Literal["shave", "hold", "restore"]

# Restore allowance accrues at the ramp rate for at most this long without a change.
MAX_RAMP_ACCRUAL_S = 600.0


@dataclass(frozen=True)
class Workload:
    """One workload as the planner sees it: shed by scaling its replicas, or (``suspendable``: a Job,
    JobSet, PyTorchJob, TrainJob, RayJob) checkpointed and suspended whole."""

    kind: str
    namespace: str
    name: str
    replicas: int
    watts_per_replica: float
    priority: int = 0
    floor: int = 0
    protected: bool = False
    suspended: bool = False
    managed_by: str | None = None
    original_replicas: int | None = None
    last_action_at: float | None = None
    checkpoint_requested_at: float | None = None
    checkpoint_completed: bool = False
    suspendable: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def watts(self) -> float:
        return 0.0 if self.suspended else self.replicas * self.watts_per_replica


@dataclass(frozen=True)
class BatteryState:
    """The battery behind the governed nodes. ``setpoint_w`` > 0 discharges, < 0 charges."""

    name: str
    soc_fraction: float
    capacity_wh: float
    max_discharge_w: float
    setpoint_w: float = 0.0
    managed_by: str | None = None
    soh_fraction: float = 1.0
    max_charge_w: float = 0.0
    last_charge_at: float | None = None
    last_discharge_at: float | None = None

    @property
    def key(self) -> str:
        return f"EnergyStorage/{self.name}"

    @property
    def usable_wh(self) -> float:
        """Energy capacity the battery still has: nameplate times state of health."""
        return self.capacity_wh * self.soh_fraction


@dataclass(frozen=True)
class PlanLimits:
    """The policy's safety limits, in planner units."""

    cooldown_s: float = 60.0
    max_actions: int = 3
    ramp_w_per_min: float = 1e12
    hysteresis: float = 0.05
    reserve_fraction: float = 0.2
    max_discharge_w: float | None = None
    checkpoint_deadline_s: float = 300.0
    on_timeout: Literal["suspend", "skip"] = "suspend"


@dataclass(frozen=True)
class PlanInput:
    policy: str
    now: float
    trigger_w: float
    expected_peak_w: float
    ladder: tuple[str, ...]
    workloads: tuple[Workload, ...] = ()
    battery: BatteryState | None = None
    limits: PlanLimits = field(default_factory=PlanLimits)
    horizon_s: float = 30.0
    period_s: float = 15.0
    ramp_since: float | None = None
    charge: ChargeRule | None = None
    workload_peak_w: float | None = None  # what scaleDown and suspend plan against (None: expected_peak_w)
    battery_peak_w: float | None = None   # what the battery's setpoint plans against (None: expected_peak_w)
    measured_w: float | None = None       # the governed load measured now (None: unknown)
    recent_peak_w: float = 0.0            # what a charge must fit under (planner.charging.charge_ceiling)
    # What the workload rungs may count on the battery for (None: its headroom). A battery that would not
    # last (planner.pacing) is credited with what it can sustain only, so a sustained excess goes to the
    # workloads while the battery still has energy for the spikes they cannot answer in time.
    battery_credit_w: float | None = None


@dataclass(frozen=True)
class Action:
    rung: str
    verb: Verb
    target: str
    expected_watts: float
    reason: str
    replicas: int | None = None
    setpoint_w: float | None = None
    checkpoint: bool = False


@dataclass(frozen=True)
class Plan:
    mode: Mode
    grid_peak_w: float
    shortfall_w: float
    actions: tuple[Action, ...]
    uncovered_w: float = 0.0
    restore_allowance_w: float = 0.0
    notes: tuple[str, ...] = ()


def _kw(watts: float) -> str:
    return f"{watts / 1000:.1f} kW"


def battery_available_w(battery: BatteryState, limits: PlanLimits, horizon_s: float, period_s: float) -> float:
    """Discharge power the battery can hold over the horizon without going below its reserve."""
    above_reserve_wh = max(0.0, (battery.soc_fraction - limits.reserve_fraction) * battery.usable_wh)
    sustain_w = above_reserve_wh * 3600.0 / max(horizon_s, period_s, 1.0)
    cap = battery.max_discharge_w if limits.max_discharge_w is None else min(battery.max_discharge_w,
                                                                             limits.max_discharge_w)
    return max(0.0, min(cap, sustain_w))


def reserve_limit(policy: str, battery: BatteryState | None, limits: PlanLimits, horizon_s: float,
                  period_s: float) -> Action | None:
    """The action that brings this policy's discharge back within what the state of charge allows
    above the reserve, or None. It applies in every mode, including when telemetry is down."""
    if battery is None or battery.managed_by not in (None, policy) or battery.setpoint_w <= 0:
        return None
    available = battery_available_w(battery, limits, horizon_s, period_s)
    if battery.setpoint_w <= available + 1e-6:
        return None
    return Action("battery", "discharge" if available > 0 else "idle", battery.key,
                  expected_watts=available - battery.setpoint_w, setpoint_w=available,
                  reason=f"state of charge {battery.soc_fraction:.0%} near the reserve "
                         f"{limits.reserve_fraction:.0%}: discharge limited to {_kw(available)}")


class _Budget:
    """Counts actions against max_actions."""

    def __init__(self, limit: int):
        self.left = limit
        self.actions: list[Action] = []

    def add(self, action: Action) -> bool:
        if self.left <= 0:
            return False
        self.actions.append(action)
        self.left -= 1
        return True


def _ours(inp: PlanInput, managed_by: str | None) -> bool:
    return managed_by in (None, inp.policy)


def _cooling(inp: PlanInput, w: Workload) -> bool:
    return w.last_action_at is not None and inp.now - w.last_action_at < inp.limits.cooldown_s


def _deadline_passed(inp: PlanInput, w: Workload) -> bool:
    assert w.checkpoint_requested_at is not None
    return inp.now - w.checkpoint_requested_at >= inp.limits.checkpoint_deadline_s


def plan(inp: PlanInput) -> Plan:
    """One control period's decisions."""
    battery = inp.battery if "battery" in inp.ladder else None
    discharging = discharging_now(battery)
    grid_peak = inp.expected_peak_w - discharging + charging_now(battery)
    need = grid_peak - inp.trigger_w
    budget = _Budget(inp.limits.max_actions)
    notes: list[str] = []

    # A battery at or below its reserve stops discharging whatever the load does.
    limit = reserve_limit(inp.policy, battery, inp.limits, inp.horizon_s, inp.period_s)
    if limit is not None and battery is not None:
        assert limit.setpoint_w is not None
        budget.add(limit)
        grid_peak += discharging - limit.setpoint_w
        need = grid_peak - inp.trigger_w
        battery = replace(battery, setpoint_w=limit.setpoint_w)

    # A charge is optional load: when the grid peak is forecast over the trigger, or the measured grid
    # power (load plus the charge) has reached it, it stops before anything else.
    charging = charging_now(battery)
    measured_grid = None if inp.measured_w is None else inp.measured_w + charging
    over_now = measured_grid is not None and measured_grid >= inp.trigger_w
    if (need > 0 or over_now) and charging > 0 and battery is not None and _ours(inp, battery.managed_by):
        why = (f"forecast grid peak exceeds trigger {_kw(inp.trigger_w)}" if need > 0 else
               f"measured grid power {_kw(measured_grid or 0.0)} reached the trigger {_kw(inp.trigger_w)}")
        if budget.add(Action("battery", "idle", battery.key, charging, f"{why}; stop charging ({_kw(charging)})",
                             setpoint_w=0.0)):
            need -= charging
            grid_peak -= charging
            battery = replace(battery, setpoint_w=0.0)

    threshold = inp.trigger_w * (1.0 - inp.limits.hysteresis)
    # The battery is set again next period: its setpoint follows the bound up to then, never above the whole one.
    near_offset = 0.0 if inp.battery_peak_w is None else max(0.0, inp.expected_peak_w - inp.battery_peak_w)
    # The workload rungs see the shortfall of their own forecast, never more than the battery's, plus
    # what the battery discharges beyond what it can sustain (battery_credit_w).
    workload_need = need if inp.workload_peak_w is None else min(
        need, need - (inp.expected_peak_w - inp.workload_peak_w))
    why = f"forecast grid peak exceeds trigger {_kw(inp.trigger_w)}"
    if inp.battery_credit_w is not None and discharging_now(battery) > inp.battery_credit_w:
        workload_need += discharging_now(battery) - inp.battery_credit_w
        if need <= 0:
            why = (f"battery discharge {_kw(discharging_now(battery))} would not last: it sustains "
                   f"{_kw(inp.battery_credit_w)} for its endurance")
    if need > 0 or workload_need > 0:
        uncovered = _shave(inp, battery, need, workload_need, near_offset, budget, why)
        if uncovered > 0:
            notes.append(f"ladder exhausted: {_kw(uncovered)} of the forecast peak not covered")
        return Plan("shave", grid_peak, need, tuple(budget.actions), uncovered_w=uncovered, notes=tuple(notes))
    if grid_peak < threshold and not over_now:
        allowance = _restore(inp, battery, threshold - inp.expected_peak_w, threshold - grid_peak + near_offset, budget)
        _charge(inp, battery, threshold, budget, notes)
        return Plan("restore", grid_peak, need, tuple(budget.actions), restore_allowance_w=allowance,
                    notes=tuple(notes))
    _trim(inp, battery, near_offset - need, budget)
    _charge(inp, battery, threshold, budget, notes)
    return Plan("hold", grid_peak, need, tuple(budget.actions), notes=tuple(notes))


def _trim(inp: PlanInput, battery: BatteryState | None, spare_w: float, budget: _Budget) -> None:
    """In the hysteresis band the workloads hold, but a battery discharging ``spare_w`` more than the
    forecast needs to keep the grid at the trigger comes down by that much: it is re-armed within its
    response time, whereas a discharge held through the band spends the energy the next peak needs."""
    if battery is None or not _ours(inp, battery.managed_by) or battery.setpoint_w <= 0:
        return
    delta = min(battery.setpoint_w, spare_w)
    if delta < max(0.05 * battery.max_discharge_w, 1.0):
        return
    budget.add(_lower_discharge(battery, delta, f"forecast grid peak {_kw(delta)} below trigger {_kw(inp.trigger_w)}"))


def _lower_discharge(battery: BatteryState, delta: float, why: str) -> Action:
    """The action that takes ``delta`` watts off the battery's discharge (idle at zero)."""
    left = battery.setpoint_w - delta
    return Action("battery", "discharge" if left > 0 else "idle", battery.key, -delta,
                  f"{why}: discharge {_kw(battery.setpoint_w)} -> {_kw(left)}", setpoint_w=left)


def _shave(inp: PlanInput, battery: BatteryState | None, shortfall: float, workload_shortfall: float,
           near_offset: float, budget: _Budget, why: str) -> float:
    """Walk the ladder until the shortfall is covered: the battery against ``shortfall`` (the
    bound), the workload rungs against ``workload_shortfall``. Returns what stays uncovered of the
    bound. The battery's setpoint follows the bound up to the next period (``near_offset`` watts
    below the whole one), but its headroom counts against the whole bound: it is re-armed within a
    period when the later peak comes. Checkpoints already asked for count on the suspend rung: a
    confirmed one (or one past its deadline with onTimeout=suspend) is suspended while it is still
    needed; one in flight counts as on its way, so no second job is asked for the same watts. A
    battery paced by its endurance (``PlanInput.battery_credit_w``) counts for the workloads only
    with what it sustains: they take over what it discharges beyond that."""
    covered = 0.0
    for rung in inp.ladder:
        if budget.left <= 0:
            break
        if rung == "battery" and battery is not None and _ours(inp, battery.managed_by):
            # A running charge was already stopped before the ladder (see plan); the cap outranks the
            # dwell, so the discharge follows in the same period.
            headroom = battery_available_w(battery, inp.limits, inp.horizon_s, inp.period_s) - discharging_now(battery)
            near = shortfall - near_offset - covered
            if near > 1e-6 and headroom > 1e-6:
                delta = min(near, headroom)
                budget.add(Action("battery", "discharge", battery.key, delta, f"{why}; discharge {_kw(delta)} more",
                                  setpoint_w=battery.setpoint_w + delta))
            elif near < 0 and covered <= 0:
                _trim(inp, battery, -near, budget)
            credit = headroom if inp.battery_credit_w is None else min(
                headroom, max(0.0, inp.battery_credit_w - discharging_now(battery)))
            covered += max(0.0, min(shortfall - covered, credit))
        elif rung == "scaleDown":
            candidates = [w for w in inp.workloads if not w.suspendable and not w.protected and _ours(inp, w.managed_by)
                          and w.replicas > w.floor and w.watts_per_replica > 0 and not _cooling(inp, w)]
            for w in sorted(candidates, key=lambda w: (w.priority, w.key)):
                if workload_shortfall - covered <= 0:
                    break
                n = min(w.replicas - w.floor, math.ceil((workload_shortfall - covered) / w.watts_per_replica))
                if not budget.add(Action("scaleDown", "scaleDown", w.key, n * w.watts_per_replica,
                                         f"{why}; {w.replicas} -> {w.replicas - n} replicas (floor {w.floor})",
                                         replicas=w.replicas - n)):
                    break
                covered += n * w.watts_per_replica
        elif rung == "suspend":
            covered = _suspend_rung(inp, workload_shortfall, covered, budget, why)
    return max(0.0, shortfall - covered)


def _suspend_rung(inp: PlanInput, shortfall: float, covered: float, budget: _Budget, why: str) -> float:
    asked = [w for w in inp.workloads if w.suspendable and w.managed_by == inp.policy and not w.suspended
             and w.checkpoint_requested_at is not None and not w.protected]
    for job in sorted(asked, key=lambda w: (w.priority, w.key)):
        if shortfall - covered <= 0:
            break
        if not (job.checkpoint_completed or _deadline_passed(inp, job)):
            covered += job.watts  # on its way: suspended when its checkpoint completes
        elif job.checkpoint_completed or inp.limits.on_timeout == "suspend":
            why_now = "checkpoint confirmed" if job.checkpoint_completed else (
                f"no checkpoint after {inp.limits.checkpoint_deadline_s:.0f} s; onTimeout=suspend")
            if budget.add(Action("suspend", "suspend", job.key, job.watts, f"{why_now}; suspending")):
                covered += job.watts
    candidates = [w for w in inp.workloads if w.suspendable and not w.protected and _ours(inp, w.managed_by)
                  and not w.suspended and w.checkpoint_requested_at is None and w.watts > 0
                  and not _cooling(inp, w)]
    for w in sorted(candidates, key=lambda w: (w.priority, w.key)):
        if shortfall - covered <= 0:
            break
        if inp.limits.checkpoint_deadline_s <= 0:
            action = Action("suspend", "suspend", w.key, w.watts, f"{why}; no checkpoint deadline: suspend")
        else:
            action = Action("suspend", "checkpoint", w.key, w.watts,
                            f"{why}; checkpoint requested, suspend within "
                            f"{inp.limits.checkpoint_deadline_s:.0f} s", checkpoint=True)
        if not budget.add(action):
            break
        covered += w.watts
    return covered


def restore_allowance_w(inp: PlanInput) -> float:
    """Watts the ramp lets come back now: the ramp rate times the time since the last change."""
    elapsed = inp.period_s if inp.ramp_since is None else max(0.0, inp.now - inp.ramp_since)
    return inp.limits.ramp_w_per_min * min(elapsed, MAX_RAMP_ACCRUAL_S) / 60.0


def discharging_now(battery: BatteryState | None) -> float:
    return battery.setpoint_w if battery is not None and battery.setpoint_w > 0 else 0.0


def charging_now(battery: BatteryState | None) -> float:
    return -battery.setpoint_w if battery is not None and battery.setpoint_w < 0 else 0.0


def _dwell_left(inp: PlanInput, since: float | None) -> float:
    if inp.charge is None or since is None:
        return 0.0
    return max(0.0, inp.charge.dwell_s - (inp.now - since))


def _charge(inp: PlanInput, battery: BatteryState | None, threshold: float, budget: _Budget,
            notes: list[str]) -> None:
    """Set the charge rate for the next period: off-peak, into the headroom below the restore
    threshold that the forecast and the recently measured peak leave after this period's restores,
    toward the target, within the ratings and the dwell."""
    rule = inp.charge
    if rule is None or battery is None or not _ours(inp, battery.managed_by) or discharging_now(battery) > 0:
        return
    if any(a.target == battery.key for a in budget.actions):
        return
    charging = charging_now(battery)
    restored = -sum(a.expected_watts for a in budget.actions if a.expected_watts < 0)
    room = threshold - max(inp.expected_peak_w, inp.recent_peak_w) - restored
    rating = battery.max_charge_w if rule.max_charge_w is None else min(battery.max_charge_w, rule.max_charge_w)
    to_target_w = max(0.0, rule.target_fraction - battery.soc_fraction) * battery.usable_wh * 3600.0 / max(
        inp.period_s, 1.0)
    dwell = _dwell_left(inp, battery.last_discharge_at)
    if not rule.off_peak:
        want, why = 0.0, "on-peak tariff"
    elif battery.soc_fraction >= rule.target_fraction:
        want, why = 0.0, f"state of charge {battery.soc_fraction:.0%} at the target {rule.target_fraction:.0%}"
    elif dwell > 0 and charging == 0:
        notes.append(f"battery charge waits {dwell:.0f} s after discharging (dwell)")
        return
    else:
        want = max(0.0, min(rating, room, to_target_w))
        eta = hours_to_charge(battery.soc_fraction, rule.target_fraction, battery.usable_wh, want)
        why = (f"off-peak with {_kw(room)} of headroom: charge at {_kw(want)} toward {rule.target_fraction:.0%} "
               f"(now {battery.soc_fraction:.0%}, {eta * 60:.0f} min to go)" if want > 0 else
               f"no headroom below {_kw(threshold)} (forecast and recent peak)")
    deadband = max(0.05 * rating, 1.0)
    if abs(want - charging) < deadband and not (want == 0 and charging > 0):
        return
    if want == 0 and charging == 0:
        return
    budget.add(Action("battery", "charge" if want > 0 else "idle", battery.key, -(want - charging),
                      why if want > 0 else f"stop charging: {why}", setpoint_w=-want))


def _restore(inp: PlanInput, battery: BatteryState | None, load_headroom: float, grid_headroom: float,
             budget: _Budget) -> float:
    """Workloads come back only into headroom that exists without the battery's help (otherwise the
    battery's discharge would be spent on restored load and the peak would return when it stops),
    within the ramp, highest priority first; the first one that does not fit stops the workloads.
    The battery then winds down into what is left of the grid headroom (unless workloads that came
    back this period still left some behind), at once: it is re-armed within its response time if
    the forecast was wrong, whereas holding a discharge on the ramp after a false alarm spends
    energy the next real peak needs."""
    allowance = restore_allowance_w(inp)
    room = min(allowance, load_headroom)
    # Checkpoints asked for during the peak are no longer needed.
    for w in inp.workloads:
        if (w.suspendable and w.managed_by == inp.policy and not w.suspended and w.checkpoint_requested_at is not None
                and not _cooling(inp, w)):
            budget.add(Action("suspend", "resume", w.key, 0.0, "peak passed before the checkpoint: request withdrawn"))
    blocked = False
    for rung in reversed(inp.ladder):
        if budget.left <= 0:
            break
        if rung == "suspend" and not blocked:
            jobs = [w for w in inp.workloads if w.suspendable and w.managed_by == inp.policy and w.suspended]
            for w in sorted(jobs, key=lambda w: (-w.priority, w.key)):
                watts = w.replicas * w.watts_per_replica
                if _cooling(inp, w) or watts > room or not budget.add(
                        Action("suspend", "resume", w.key, -watts, f"restore: {_kw(watts)} within ramp and headroom")):
                    blocked = True
                    break
                room -= watts
        elif rung == "scaleDown" and not blocked:
            blocked, room = _scale_up(inp, room, budget)
        elif rung == "battery" and battery is not None and battery.managed_by == inp.policy and battery.setpoint_w > 0:
            restored = -sum(a.expected_watts for a in budget.actions if a.expected_watts < 0)
            delta = min(battery.setpoint_w, grid_headroom - restored)
            # Workloads coming back this period go first; a battery behind workloads that cannot come
            # back (headroom, ramp, cooldown) still winds down rather than drain for nothing.
            if delta > 0 and not (blocked and restored > 0):
                budget.add(_lower_discharge(battery, delta, "restore"))
    return allowance


def _scale_up(inp: PlanInput, room: float, budget: _Budget) -> tuple[bool, float]:
    """Scale the policy's Deployments back up into ``room``, highest priority first. Returns whether
    one had to stay below its recorded replicas (the restore stops there), and the room left."""
    scaled = [w for w in inp.workloads
              if not w.suspendable and w.managed_by == inp.policy and w.original_replicas is not None]
    for w in sorted(scaled, key=lambda w: (-w.priority, w.key)):
        assert w.original_replicas is not None
        if _cooling(inp, w):
            return True, room
        missing = w.original_replicas - w.replicas
        if missing <= 0:
            budget.add(Action("scaleDown", "scaleUp", w.key, 0.0,
                              f"already at {w.replicas} replicas (recorded {w.original_replicas}): released",
                              replicas=w.replicas))
            continue
        n = min(missing, int(room // w.watts_per_replica)) if w.watts_per_replica > 0 else missing
        if n <= 0 or not budget.add(Action(
                "scaleDown", "scaleUp", w.key, -n * w.watts_per_replica,
                f"restore: {w.replicas} -> {w.replicas + n} of {w.original_replicas} replicas",
                replicas=w.replicas + n)):
            return True, room
        room -= n * w.watts_per_replica
        if n < missing:
            return True, room
    return False, room
