"""A PowerPolicy spec in planner units: its limits, its tariff windows and its charge rule. The
operator and the simulator both read a policy through these, so a scenario runs the policy an
admin applies exactly as the operator would."""

from __future__ import annotations

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.planner.charging import ChargeRule, PeakEnergyTracker, charge_target
from gridshift.planner.ladder import BatteryState, PlanLimits
from gridshift.planner.tariff import DAYS, PeakWindow, is_peak, seconds_of_day


def plan_limits(spec: PowerPolicySpec) -> PlanLimits:
    """The policy's safety settings in planner units."""
    safety = spec.safety
    return PlanLimits(
        cooldown_s=safety.cooldown_seconds, max_actions=safety.max_actions_per_period,
        ramp_w_per_min=safety.restore_ramp_watts_per_minute or 0.1 * spec.budget.cap_watts,
        hysteresis=safety.hysteresis_fraction,
        reserve_fraction=spec.storage.reserve_fraction if spec.storage else 0.2,
        max_discharge_w=spec.storage.max_discharge_watts if spec.storage else None,
        checkpoint_deadline_s=spec.workloads.checkpoint.deadline_seconds,
        on_timeout=spec.workloads.checkpoint.on_timeout,
    )


def peak_windows(spec: PowerPolicySpec) -> tuple[PeakWindow, ...]:
    """spec.tariff.peakWindows as planner windows (seconds of the day, weekday numbers)."""
    return tuple(PeakWindow(seconds_of_day(w.start), seconds_of_day(w.end), frozenset(DAYS.index(d) for d in w.days))
                 for w in spec.tariff.peak_windows)


def charge_rule(spec: PowerPolicySpec, battery: BatteryState | None, peaks: PeakEnergyTracker,
                now: float) -> ChargeRule | None:
    """When and how far the policy's battery recharges: off-peak by spec.tariff, toward the fixed
    target or one sized on the largest peak of the last day."""
    storage = spec.storage
    if storage is None or not storage.recharge or battery is None:
        return None
    target = storage.charge_target_fraction
    if target is None:
        target = charge_target(storage.reserve_fraction, peaks.largest_wh(), battery.usable_wh)
    return ChargeRule(off_peak=not is_peak(peak_windows(spec), spec.tariff.time_zone, now), target_fraction=target,
                      max_charge_w=storage.max_charge_watts, dwell_s=storage.min_dwell_seconds)


def workload_confidence(spec: PowerPolicySpec) -> float | None:
    """The forecast level the workload rungs plan against: spec.forecast.workloadConfidence, or the
    median when a battery stands in front of them, or None (the same bound as the battery)."""
    if spec.forecast.workload_confidence is not None:
        return spec.forecast.workload_confidence
    return 0.5 if spec.storage is not None and "battery" in spec.workloads.ladder else None
