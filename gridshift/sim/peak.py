"""Peak shaving simulated second by second with the operator's own planner and forecaster.

A site (``gridshift.sim.site``: training jobs replaying real node traces, inference services, other
load; or just a load series) meets a grid cap; a battery (``gridshift.ess.physics``) may stand
behind it. Every ``period_s`` a strategy decides; battery setpoints take effect ``response_s``
later, as a real PCS does, and workload actions with the drain, checkpoint and reload delays of
the site model:

- ``none``: nothing ever moves;
- ``reactive``: a threshold controller on the measured load: the battery discharges measured load -
  trigger while above it, and when the site has workload rungs the ladder sheds on the measured
  load left after the battery; no recharge;
- ``persistence``: the operator's planner (``planner.plan``) on the operator's fallback outlook,
  which is the measured load;
- ``student``: the planner on the distilled student's calibrated upper bound (``planner.outlook``
  with the ONNX runtime), moved online by the operator's ``BoundTracker`` unless
  ``Setup.online_bound`` is off, its median adapted to the site by the operator's
  ``OnlineAdapter``, exactly as the operator runs it;
- ``oracle``: the planner on the true peak of the next horizon (the site run ahead on a fork with
  no new action): the upper bound of what any forecaster can give the same ladder.

Recharging (off-peak by the tariff, toward a target, after a dwell) is the planner's too. No I/O:
the caller passes the site and, for ``student``, the loaded model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from gridshift.ess.physics import BatteryPhysics
from gridshift.forecaster.adapt import OnlineAdapter
from gridshift.forecaster.conformal import BoundTracker
from gridshift.forecaster.runtime import Forecaster, Persistence
from gridshift.planner import Action, BatteryState, PlanInput, PlanLimits, plan
from gridshift.planner.admission import admission_headroom, admit
from gridshift.planner.charging import (
    LOOKBACK_S,
    ChargeRule,
    PeakEnergyTracker,
    charge_ceiling,
    charge_target,
    dwell_marks,
)
from gridshift.planner.outlook import (
    OutlookOptions,
    bound_tracker,
    learn_from,
    online_adapter,
    outlook,
    skill_gate,
)
from gridshift.planner.pacing import DischargePace, pace_battery
from gridshift.planner.skill import SkillGate
from gridshift.planner.speculation import ReactiveNeed, limit_speculation, speculation_budget
from gridshift.planner.tariff import PeakWindow, is_peak
from gridshift.sim.site import Cluster, SiteModel
from gridshift.sim.strategies import Strategy

DEMAND_INTERVAL_S = 900  # demand charges bill the highest 15-minute mean
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Battery:
    """The battery at the start (its physics, copied for each run), its reserve and PCS delay."""

    physics: BatteryPhysics
    reserve_fraction: float = 0.2
    response_s: int = 1


@dataclass(frozen=True)
class Setup:
    """The policy and the battery of one simulation. ``limits`` None: the planner defaults with no
    cooldown, the hysteresis and the restore ramp below, and the battery's reserve."""

    cap_w: float
    trigger_w: float
    battery: Battery | None
    period_s: int = 5
    horizon_s: int = 30
    confidence: float = 0.9
    ladder: tuple[str, ...] = ("battery",)
    limits: PlanLimits | None = None
    hysteresis: float = 0.05
    ramp_w_per_min: float | None = None   # None: 10% of the cap per minute, as the operator
    recharge: bool = True
    charge_target_fraction: float | None = 0.8  # None: sized on the largest recent peak, as the operator
    max_charge_w: float | None = None
    dwell_s: float = 60.0
    peak_windows: tuple[PeakWindow, ...] = ()
    time_zone: str = "UTC"
    demand_price_per_kw: float = 15.0
    start_time: float = 1_767_225_600.0  # 2026-01-01T00:00Z: where the tariff clock starts
    online_bound: bool = True  # track the upper bound's coverage online, as the operator does
    # The level scaleDown and suspend plan against (None: confidence); a scenario sets it as the
    # operator does, from its policy (planner.policy.workload_confidence).
    workload_confidence: float | None = None
    # How long the battery's energy should last at its recent mean discharge (planner.pacing); 0: no pacing.
    endurance_s: float = 7200.0
    # Do no harm (planner.skill, planner.speculation): plan on persistence while the forecast's recent
    # matured skill is below persistence's, and keep back the battery energy reactive control would need.
    skill_gate: bool = True
    budget_speculation: bool = True
    # A paced battery counts for the workload rungs only with what it sustains (planner.pacing).
    pace_workloads: bool = True
    # Admission (planner.admission): the planner's strategies hold new jobs at the door while the site
    # has no room for them, for at most max_wait_s. Off: jobs start as soon as nodes are free.
    admission: bool = False
    max_wait_s: float = 900.0

    def plan_limits(self) -> PlanLimits:
        if self.limits is not None:
            return self.limits
        return PlanLimits(cooldown_s=0.0, max_actions=3, hysteresis=self.hysteresis,
                          ramp_w_per_min=self.ramp_w_per_min or 0.1 * self.cap_w,
                          reserve_fraction=self.battery.reserve_fraction if self.battery else 0.2)


@dataclass
class Result:
    strategy: str
    seconds: int
    energy_above_cap_kwh: float
    load_above_trigger_kwh: float  # the site's own excess over the trigger, before the battery
    worst_overshoot_w: float
    longest_overshoot_s: int
    peak_demand_kw: float
    demand_charge: float
    battery_discharged_kwh: float
    battery_charged_kwh: float
    battery_cycles: float
    actions: int
    final_soc: float
    soc_min: float
    job_delay_gpu_h: float = 0.0
    work_lost_gpu_h: float = 0.0
    inference_shed_replica_h: float = 0.0
    admission_wait_gpu_h: float = 0.0  # part of job_delay_gpu_h: jobs held at the door with nodes free
    jobs_completed: int = 0
    checkpoints: int = 0
    suspensions: int = 0
    grid_w: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    battery_w: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    load_w: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def summary(self) -> dict[str, float | int | str]:
        return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in asdict(self).items()
                if k not in ("grid_w", "battery_w", "load_w")}


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


class _BatteryRun:
    """The battery in one run: physics, what the controller asked, what the PCS does, the dwell marks."""

    def __init__(self, battery: Battery | None):
        self.spec = battery
        self.physics = replace(battery.physics) if battery else None
        self.setpoint = 0.0
        self.applied = 0.0
        self.pending: list[tuple[int, float]] = []
        self.last_charge: float | None = None
        self.last_discharge: float | None = None

    def ask(self, new: float, i: int, now: float) -> bool:
        if self.spec is None or abs(new - self.setpoint) <= 1e-6:
            return False
        charged, discharged = dwell_marks(self.setpoint, new)
        self.last_charge = now if charged else self.last_charge
        self.last_discharge = now if discharged else self.last_discharge
        self.setpoint = new
        self.pending.append((i + self.spec.response_s, new))
        return True

    def step(self, i: int) -> float:
        if self.physics is None:
            return 0.0
        while self.pending and self.pending[0][0] <= i:
            self.applied = self.pending.pop(0)[1]
        return self.physics.step(self.applied, 1.0)

    def state(self) -> BatteryState | None:
        p = self.physics
        if p is None:
            return None
        return BatteryState("sim", p.soc_fraction, p.capacity_wh, p.max_discharge_w, setpoint_w=self.setpoint,
                            managed_by="sim", soh_fraction=p.soh_fraction, max_charge_w=p.max_charge_w,
                            last_charge_at=self.last_charge, last_discharge_at=self.last_discharge)


def simulate(site: SiteModel | Sequence[float] | np.ndarray, setup: Setup, strategy: Strategy,
             model: Forecaster | None = None, progress: Progress | None = None) -> Result:
    """Run one strategy over ``site`` (or a load series in watts, one sample a second)."""
    if strategy == "student" and model is None:
        raise ValueError("the student strategy needs a loaded forecaster model")
    if not isinstance(site, SiteModel):
        site = SiteModel.of_load(site)
    n = site.seconds
    cluster = Cluster(site, setup.start_time)
    cluster.gating = setup.admission and strategy in ("persistence", "student", "oracle")
    bat = _BatteryRun(setup.battery)
    limits = setup.plan_limits()
    # The operator's views: the student, or persistence, its fallback when a model cannot be used.
    forecaster: Forecaster | Persistence = model if strategy == "student" and model is not None else Persistence()
    tracker = bound_tracker(forecaster, setup.confidence, None) if setup.online_bound else None
    peaks = PeakEnergyTracker() if setup.charge_target_fraction is None else None
    adapter = online_adapter(forecaster, None)
    gate = skill_gate(forecaster, setup.confidence, None) if setup.skill_gate else None
    ctx = _Context(setup, limits, forecaster, tracker, peaks, adapter, gate)
    actions = 0
    load = np.empty(n)
    grid = np.empty(n)
    battery_w = np.zeros(n)
    soc_min = bat.physics.soc_fraction if bat.physics else 0.0
    period = max(1, setup.period_s)
    for i in range(0, n, period):
        now = setup.start_time + i
        if strategy != "none" and i > 0:
            cluster.schedule()
            before = actions
            for a in _decide(strategy, load[:i], i, now, ctx, cluster, bat):
                if a.rung == "battery":
                    assert a.setpoint_w is not None
                    actions += bat.ask(a.setpoint_w, i, now)
                elif cluster.apply(a):
                    actions += 1
            if actions > before:
                ctx.last_change = now
        chunk = cluster.advance(period)
        m = len(chunk)
        load[i:i + m] = chunk
        for j in range(i, i + m):
            power = bat.step(j)
            battery_w[j] = power
            grid[j] = load[j] - power
            if peaks is not None:
                peaks.observe(setup.start_time + j, load[j], setup.trigger_w)
        if bat.physics is not None:
            soc_min = min(soc_min, bat.physics.soc_fraction)
        if progress is not None and (i // period) % 120 == 0:
            progress(i + m, n)
    if progress is not None:
        progress(n, n)
    return _result(strategy, setup, load, grid, battery_w, bat, actions, soc_min, cluster)


def _result(strategy: str, setup: Setup, load: np.ndarray, grid: np.ndarray, battery_w: np.ndarray, bat: _BatteryRun,
            actions: int, soc_min: float, cluster: Cluster) -> Result:
    n = len(load)
    over = np.maximum(grid - setup.cap_w, 0.0)
    peak_mask = np.array([is_peak(setup.peak_windows, setup.time_zone, setup.start_time + i)
                          for i in range(0, n, 60)]).repeat(60)[:n] if setup.peak_windows else np.ones(n, bool)
    billed = np.where(peak_mask, grid, 0.0)
    interval = min(DEMAND_INTERVAL_S, n)
    means = np.convolve(billed, np.ones(interval) / interval, mode="valid")
    peak_kw = float(means.max()) / 1000.0 if len(means) else 0.0
    p = bat.physics
    acct = cluster.acct
    return Result(
        strategy=strategy, seconds=n, energy_above_cap_kwh=float(over.sum()) / 3.6e6,
        load_above_trigger_kwh=float(np.maximum(load - setup.trigger_w, 0.0).sum()) / 3.6e6,
        worst_overshoot_w=float(over.max()) if n else 0.0, longest_overshoot_s=_longest_run(over > 0),
        peak_demand_kw=peak_kw, demand_charge=peak_kw * setup.demand_price_per_kw,
        battery_discharged_kwh=p.discharged_ac_wh / 1000.0 if p else 0.0,
        battery_charged_kwh=p.charged_ac_wh / 1000.0 if p else 0.0,
        battery_cycles=p.discharged_ac_wh / p.capacity_wh if p else 0.0, actions=actions,
        final_soc=p.soc_fraction if p else 0.0, soc_min=soc_min,
        job_delay_gpu_h=acct.job_delay_gpu_h, work_lost_gpu_h=acct.lost_gpu_s / 3600.0,
        inference_shed_replica_h=acct.shed_replica_s / 3600.0, admission_wait_gpu_h=acct.gated_gpu_s / 3600.0,
        jobs_completed=acct.jobs_completed,
        checkpoints=acct.checkpoints, suspensions=acct.suspensions, grid_w=grid, battery_w=battery_w, load_w=load)


@dataclass
class _Context:
    setup: Setup
    limits: PlanLimits
    forecaster: Forecaster | Persistence
    tracker: BoundTracker | None
    peaks: PeakEnergyTracker | None
    adapter: OnlineAdapter | None
    gate: SkillGate | None = None
    pace: DischargePace = field(default_factory=DischargePace)
    need: ReactiveNeed = field(default_factory=ReactiveNeed)
    last_change: float | None = None  # the policy's status.lastChangeTime: where the restore ramp starts


def _decide(strategy: Strategy, history: np.ndarray, i: int, now: float, ctx: _Context, cluster: Cluster,
            bat: _BatteryRun) -> tuple[Action, ...]:
    """This period's actions. ``history`` is the load up to, not including, second ``i``."""
    setup, limits = ctx.setup, ctx.limits
    measured = float(history[-1])
    battery = bat.state()
    if strategy == "reactive":
        out: list[Action] = []
        if battery is not None:
            above = battery.soc_fraction > limits.reserve_fraction
            want = max(0.0, min(measured - setup.trigger_w, battery.max_discharge_w)) if above else 0.0
            out.append(Action("battery", "discharge" if want > 0 else "idle", battery.key, want - bat.setpoint,
                              "reactive threshold", setpoint_w=want))
        rungs = tuple(r for r in setup.ladder if r != "battery")
        if rungs:
            shed = plan(PlanInput("sim", now, setup.trigger_w, measured - max(bat.applied, 0.0), rungs,
                                  workloads=cluster.workloads(), limits=limits, horizon_s=setup.horizon_s,
                                  period_s=setup.period_s, ramp_since=ctx.last_change))
            out.extend(shed.actions)
        return tuple(out)
    credit = None
    if strategy == "oracle":
        ahead = cluster.fork().advance(setup.horizon_s + 1)
        expected, workload_peak = float(ahead.max()), None
        battery_peak = float(ahead[:setup.period_s + 1].max()) if setup.period_s < setup.horizon_s else None
    else:
        window = ctx.forecaster.meta.window if isinstance(ctx.forecaster, Forecaster) else 1
        if ctx.tracker is not None:
            recent = history[-(setup.horizon_s + 2 * setup.period_s):]
            ctx.tracker.settle(now - np.arange(len(recent))[::-1], recent)
        if ctx.adapter is not None:
            recent = history[-(ctx.adapter.context + setup.horizon_s + 2 * setup.period_s):]
            learn_from(ctx.adapter, ctx.forecaster, now - np.arange(len(recent))[::-1], recent)
        skill = None
        if ctx.gate is not None:
            recent = history[-int(max(ctx.forecaster.meta.horizons_s) + 2 * setup.period_s):]
            ctx.gate.settle(now - np.arange(len(recent))[::-1], recent)
            skill = ctx.gate.judge(setup.horizon_s)
        paced = pace_battery(ctx.pace, battery, now=now, reserve_fraction=limits.reserve_fraction,
                             pace_s=setup.endurance_s, cap_w=setup.cap_w, trigger_w=setup.trigger_w)
        context = max(window, int(LOOKBACK_S), ctx.adapter.context if ctx.adapter else 0)
        looking = OutlookOptions(horizon_s=setup.horizon_s, confidence=setup.confidence, cap_w=setup.cap_w,
                                 workload_confidence=setup.workload_confidence, battery_horizon_s=setup.period_s,
                                 battery_margin_w=paced.margin_w if paced else 0.0)
        view = outlook(ctx.forecaster, history[-context:], now, looking,
                       distrust=None if skill is None or skill.trusted else skill.reason, tracker=ctx.tracker,
                       adapter=ctx.adapter)
        if ctx.tracker is not None:
            ctx.tracker.add(view.bounds)
        if setup.pace_workloads and paced is not None:
            credit = paced.credit_w
        if setup.budget_speculation:
            recent = history[-(setup.period_s + 1):]
            ctx.need.observe(now - np.arange(len(recent))[::-1], recent, setup.trigger_w)
            view = limit_speculation(view, speculation_budget(battery, limits.reserve_fraction, ctx.need,
                                                              setup.period_s))
        if ctx.gate is not None:
            ctx.gate.add(now, view.load_w, view.predictions, setup.period_s, view.model_battery_w,
                         view.persistence_battery_w)
        expected, workload_peak, battery_peak = view.expected_peak_w, view.workload_peak_w, view.battery_peak_w
    charge = None
    if setup.recharge and battery is not None:
        target = setup.charge_target_fraction
        if target is None:
            assert ctx.peaks is not None
            target = charge_target(limits.reserve_fraction, ctx.peaks.largest_wh(), battery.usable_wh)
        charge = ChargeRule(off_peak=not is_peak(setup.peak_windows, setup.time_zone, now), target_fraction=target,
                            max_charge_w=setup.max_charge_w, dwell_s=setup.dwell_s)
    decided = plan(PlanInput("sim", now, setup.trigger_w, expected, setup.ladder, workloads=cluster.workloads(),
                             battery=battery, limits=limits, horizon_s=setup.horizon_s, period_s=setup.period_s,
                             ramp_since=ctx.last_change, charge=charge, workload_peak_w=workload_peak,
                             battery_peak_w=battery_peak, measured_w=measured,
                             recent_peak_w=charge_ceiling(history, 1.0, setup.period_s),
                             battery_credit_w=credit))
    if cluster.gating:
        # gridshift's own load this period (restores, a charge, less discharge) comes before new work.
        own = -sum(a.expected_watts for a in decided.actions if a.expected_watts < 0)
        room = admission_headroom(setup.trigger_w, limits.hysteresis, expected, own)
        cluster.admit(admit(cluster.gated(), room, setup.max_wait_s).admitted)
    return decided.actions
