"""One control period of one PowerPolicy: telemetry -> forecast -> plan -> act -> explain.

Kopf-free on purpose: the Kopf daemon in ``handlers.py`` calls :meth:`PolicyController.run_once`
every period and writes what it returns (the status, the Events) back to the cluster. Anything a
restarted process needs lives on the cluster (annotations on changed objects, the policy's
status); the in-process memory only holds the forecast-error history.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import urllib3
from kubernetes import client

from gridshift.actuators.kubernetes import KubernetesActuator, Outcome
from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import API_GROUP, API_VERSION, PLURAL, PowerPolicySpec
from gridshift.api.times import parse_rfc3339, rfc3339
from gridshift.forecaster.adapt import OnlineAdapter
from gridshift.forecaster.conformal import BoundTracker
from gridshift.forecaster.runtime import Forecaster, Persistence
from gridshift.operator import metrics
from gridshift.operator.access import AccessResolver
from gridshift.operator.events import Event
from gridshift.operator.inventory import Inventory, InventoryReader
from gridshift.operator.migrating import MigrationStep
from gridshift.operator.models import ModelCache
from gridshift.operator.objects import ClusterObjects
from gridshift.operator.queries import power_query
from gridshift.operator.status import (
    RECENT_ACTIONS,
    PeriodFacts,
    action_record,
    condition,
    explain,
    interrupted,
    report_outcome,
    shaved_watts,
    status_fields,
)
from gridshift.planner import Action, PlanInput, plan
from gridshift.planner.charging import LOOKBACK_S, PeakEnergyTracker, charge_ceiling
from gridshift.planner.ladder import BatteryState, Plan, reserve_limit
from gridshift.planner.outlook import (
    ErrorTracker,
    Outlook,
    OutlookOptions,
    bound_tracker,
    learn_from,
    online_adapter,
    outlook,
    skill_gate,
)
from gridshift.planner.pacing import DischargePace, Pacing, pace_battery
from gridshift.planner.policy import charge_rule, plan_limits, workload_confidence
from gridshift.planner.skill import Skill, SkillGate
from gridshift.planner.speculation import ReactiveNeed, Speculation, limit_speculation, speculation_budget
from gridshift.telemetry.coverage import Coverage, coverage, per_node_query
from gridshift.telemetry.prometheus import Access, PrometheusReader, Reading, node_matcher, url_allowed

log = logging.getLogger(__name__)
# What an API server or network blip raises from the Kubernetes client besides an ApiException.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (client.ApiException, urllib3.exceptions.HTTPError, OSError)

@dataclass
class PeriodResult:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    plan: Plan | None = None
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class _Memory:
    errors: ErrorTracker = field(default_factory=ErrorTracker)
    bounds: BoundTracker | None = None
    adapter: OnlineAdapter | None = None
    peaks: PeakEnergyTracker = field(default_factory=PeakEnergyTracker)
    pace: DischargePace = field(default_factory=DischargePace)
    skill: SkillGate | None = None
    need: ReactiveNeed = field(default_factory=ReactiveNeed)
    recent_peak_w: float = 0.0
    last_load: float | None = None
    measure_keys: set[tuple[str, str]] = field(default_factory=set)
    node_watts: dict[str, float] = field(default_factory=dict)  # each governed node's last reported power
    first_period: bool = True  # until this process has acted for the policy once
    reasons: dict[str, str] = field(default_factory=dict)
    said: dict[str, str] = field(default_factory=dict)  # per migratable Job, the last decision an Event reported


def _strand_guard(policy: str, battery: BatteryState | None) -> Action | None:
    """The idle command for this policy's battery whose device is not ready while a setpoint of ours is
    still on it: cleared now, it cannot resume (a discharge hours stale) when the device comes back."""
    if battery is None or battery.managed_by != policy or battery.setpoint_w == 0:
        return None
    return Action("battery", "idle", battery.key, -battery.setpoint_w,
                  f"the battery's device is not ready: setpoint {battery.setpoint_w:.0f} W cleared so that it does "
                  "not resume when the device returns", setpoint_w=0.0)


class PolicyController:
    """Runs control periods for any number of policies; one instance per operator process."""

    def __init__(self, api: client.ApiClient, default_prometheus_url: str | None = None, force_dry_run: bool = False,
                 allowed_prometheus_urls: tuple[str, ...] | None = None, access: AccessResolver | None = None):
        self.api = api
        self.access = access or AccessResolver(api)
        self.default_prometheus_url = default_prometheus_url
        # Base URLs a policy's spec.telemetry.prometheusUrl may name (None: any); the operator's own is always allowed.
        self.allowed_prometheus_urls = allowed_prometheus_urls
        self.force_dry_run = force_dry_run
        self.inventory = InventoryReader(api)
        self.models = ModelCache(api)
        self.migration = MigrationStep(api, self.inventory)
        self.memory: dict[str, _Memory] = {}
        self.readers: dict[tuple[str, str], PrometheusReader] = {}

    def forget(self, name: str) -> None:
        self.memory.pop(name, None)
        metrics.forget(name)

    def _reader(self, url: str, access: Access) -> PrometheusReader:
        key = (url, access.fingerprint())
        if key not in self.readers:
            self.readers = {k: r for k, r in self.readers.items() if k[0] != url}  # credentials rotated
            self.readers[key] = PrometheusReader(url, access=access)
        return self.readers[key]

    # -- the period ---------------------------------------------------------------------------------------------------

    def run_once(self, name: str, spec: PowerPolicySpec, status: dict[str, Any] | None,
                 generation: int | None = None, now: float | None = None,
                 cluster: ClusterObjects | None = None, paused: bool = False) -> PeriodResult:
        """One control period of policy ``name``. ``cluster``: the cluster's objects as the operator's
        watch caches hold them (None: listed from the API server, each kind once). ``paused`` (the
        policy's ``gridshift.io/paused``): plan and report, change nothing but the battery's reserve guard."""
        started = time.monotonic()
        now = time.time() if now is None else now
        status = dict(status or {})
        mem = self.memory.setdefault(name, _Memory())
        try:
            return self._period(name, spec, status, generation, now, mem, cluster or self.inventory.listed(),
                                paused)
        finally:
            metrics.LOOP_SECONDS.labels(name).observe(time.monotonic() - started)

    def _degraded(self, name: str, spec: PowerPolicySpec, status: dict[str, Any], generation: int | None, now: float,
                  mem: _Memory, reason: str, message: str) -> PeriodResult:
        """Hold: no new actions, nothing restored, and say why."""
        prev = status.get("conditions", [])
        conditions = [
            condition(prev, "Ready", "False", reason, message, now, generation),
            condition(prev, "Degraded", "True", reason, f"{message}; holding current actions", now, generation),
            condition(prev, "ForecastHealthy", "Unknown", reason, "no trusted telemetry to forecast from", now,
                       generation),
            next((c for c in prev if c.get("type") == "Acting"),
                 condition(prev, "Acting", "Unknown", reason, "unknown while degraded", now, generation)),
        ]
        metrics.DEGRADED.labels(name).set(1)
        metrics.BUDGET.labels(name).set(spec.budget.cap_watts)
        kind = {"InventoryFailed": "inventory", "TelemetryError": "telemetry", "TelemetryIncomplete": "telemetry",
                "PrometheusAuthFailed": "telemetry"}.get(reason)
        if kind is not None:
            metrics.ERRORS.labels(name, kind).inc()
        events = []
        if mem.reasons.get("degraded") != reason:
            events.append(Event("Warning", reason, f"{message}; holding current actions"))
        mem.reasons["degraded"] = reason
        new_status = {**status, "phase": "Degraded", "conditions": conditions, "observedGeneration": generation}
        outcomes = self._guard_reserve(name, spec, now, new_status, events)
        return PeriodResult(new_status, events, outcomes=outcomes)

    def _guard_reserve(self, name: str, spec: PowerPolicySpec, now: float, status: dict[str, Any],
                       events: list[Event]) -> list[Outcome]:
        """Holding does not mean draining: while blind to power, a battery this policy discharges is
        still brought back within its reserve (its state of charge comes from the EnergyStorage
        status, not from Prometheus), and one whose device is not ready loses our setpoint."""
        if spec.storage is None:
            return []
        stranded: list[BatteryState] = []
        battery = self.inventory.battery(spec.storage.energy_storage_ref, [], stranded)
        action = reserve_limit(name, battery, plan_limits(spec), spec.forecast.horizon_seconds,
                               spec.safety.period_seconds)
        if action is None or battery is None or battery.managed_by != name:
            action = _strand_guard(name, stranded[0] if stranded else None)
        if action is None:
            return []
        dry = spec.safety.dry_run or self.force_dry_run
        if not dry:
            self._journal(name, [*status.get("recentActions", []), action_record(action, False, now, "Intended")])
        outcome = KubernetesActuator(self.api, name, dry).apply(action, now)
        event, record = report_outcome(outcome, dry, now)
        events.append(event)
        if record is not None:
            status["recentActions"] = [*status.get("recentActions", []), record][-RECENT_ACTIONS:]
        if outcome.applied:
            status["lastChangeTime"] = rfc3339(now)
        return [outcome]

    def _period(self, name: str, spec: PowerPolicySpec, status: dict[str, Any], generation: int | None, now: float,
                mem: _Memory, cluster: ClusterObjects, paused: bool = False) -> PeriodResult:
        url = spec.telemetry.prometheus_url or self.default_prometheus_url
        if url is None:
            return self._degraded(name, spec, status, generation, now, mem, "NoPrometheus",
                                  "spec.telemetry.prometheusUrl is unset and the operator has no --prometheus-url")
        allowed = self.allowed_prometheus_urls
        if allowed is not None and not url_allowed(url, (*allowed, *filter(None, [self.default_prometheus_url]))):
            return self._degraded(name, spec, status, generation, now, mem, "PrometheusNotAllowed",
                                  f"spec.telemetry.prometheusUrl {url!r} is not under any of the operator's "
                                  "--allow-prometheus-url base URLs; nothing was requested from it")
        try:
            nodes = self.inventory.nodes(spec.scope.node_selector, cluster)
        except client.ApiException as exc:
            return self._degraded(name, spec, status, generation, now, mem, "InventoryFailed",
                                  f"listing nodes failed: {exc.status} {exc.reason}")
        model, model_problem = self.models.get(spec)
        step = model.meta.step_s if isinstance(model, Forecaster) else spec.telemetry.step_seconds
        window = model.meta.window if isinstance(model, Forecaster) else 120
        # Enough history for the adapter to learn from every origin whose horizon matured since the last period.
        maturing = (max(model.meta.horizons_s) + spec.safety.period_seconds) / step \
            if isinstance(model, Forecaster) else 0.0
        matcher = node_matcher(spec.telemetry.node_label, list(nodes))
        query = power_query(spec, nodes)
        access = self.access.for_policy(spec)
        if isinstance(access, str):
            return self._degraded(name, spec, status, generation, now, mem, "PrometheusAuthFailed", access)
        reader = self._reader(url, access)
        # Enough history for persistence's bound too: the load's rises over the lookback (planner.outlook).
        history_s = max((window + maturing) * step, LOOKBACK_S)
        reading: Reading = reader.read(query, now, lookback_s=history_s + 5 * step, step_s=step,
                                       stale_after_s=spec.telemetry.stale_after_seconds, incremental=True)
        if reading.status != "ok" or reading.series is None:
            reason = {"stale": "TelemetryStale", "missing": "TelemetryMissing"}.get(reading.status, "TelemetryError")
            return self._degraded(name, spec, status, generation, now, mem, reason, reading.reason)
        covered = self._coverage(name, spec, nodes, query, reader, mem)
        if isinstance(covered, str):
            return self._degraded(name, spec, status, generation, now, mem, "TelemetryIncomplete", covered)
        series = reading.series
        if covered is not None and covered.missing:  # a silent node counts at its last power, never 0
            series = replace(series, values=series.values + covered.estimate_w)
        if mem.reasons.pop("degraded", None) is not None:
            recovered = [Event("Normal", "TelemetryRecovered", f"telemetry from {url} is trusted again")]
        else:
            recovered = []
        metrics.DEGRADED.labels(name).set(0)

        pod_watts: dict[tuple[str, str], float] = {}
        if spec.telemetry.queries.pod_power:
            by_pod, _ = reader.read_by(spec.telemetry.queries.pod_power.replace("$selector", matcher),
                                       ("namespace", "pod"))
            pod_watts = {(k[0], k[1]): v for k, v in by_pod.items()}
        try:
            inventory = self.inventory.read(name, spec, nodes, pod_watts, cluster)
        except client.ApiException as exc:
            return self._degraded(name, spec, status, generation, now, mem, "InventoryFailed",
                                  f"listing workloads failed: {exc.status} {exc.reason}")

        if covered is not None and covered.missing:
            inventory.notes.append(covered.describe())
        times = series.times()
        mem.errors.settle(times, series.values)
        mem.bounds = bound_tracker(model, spec.forecast.confidence, mem.bounds)
        if mem.bounds is not None:
            mem.bounds.settle(times, series.values)
        mem.adapter = online_adapter(model, mem.adapter)
        learn_from(mem.adapter, model, times, series.values)
        mem.need.observe(times, series.values, spec.budget.effective_trigger_watts)
        skill = self._skill(model, spec, mem, times, series.values)
        error = mem.errors.fraction
        trusted = model_problem is None and (error is None or error <= spec.forecast.max_error_fraction)
        why_not = model_problem or (f"forecast error {error:.0%} of observed power exceeds "
                                    f"{spec.forecast.max_error_fraction:.0%}" if error is not None else "")
        if trusted and skill is not None and not skill.trusted:
            trusted, why_not = False, skill.reason
        # GPU power cannot exceed every governed GPU at wattsPerGpu: no forecast goes above that.
        ceiling = sum(nodes.values()) * spec.workloads.watts_per_gpu if spec.telemetry.source == "dcgm" else None
        paced = self._pace(spec, inventory, now, mem)
        looking = OutlookOptions(horizon_s=spec.forecast.horizon_seconds, confidence=spec.forecast.confidence,
                                 cap_w=spec.budget.cap_watts, ceiling_w=ceiling or None,
                                 workload_confidence=workload_confidence(spec),
                                 battery_horizon_s=spec.safety.period_seconds,
                                 battery_margin_w=paced.margin_w if paced is not None else 0.0)
        view = outlook(model, series.values, float(times[-1]), looking,
                       distrust=None if trusted else why_not or "forecast not trusted", tracker=mem.bounds,
                       adapter=mem.adapter)
        mem.errors.add(view.predictions)
        if mem.bounds is not None:
            mem.bounds.add(view.bounds)
        if mem.skill is not None:
            mem.skill.add(float(times[-1]), view.load_w, view.predictions, spec.safety.period_seconds,
                          view.model_battery_w, view.persistence_battery_w)
        speculation = None
        if spec.storage is not None and "battery" in spec.workloads.ladder:
            speculation = speculation_budget(inventory.battery, spec.storage.reserve_fraction, mem.need,
                                             spec.safety.period_seconds)
            view = limit_speculation(view, speculation)
        mem.peaks.observe(float(times[-1]), view.load_w, spec.budget.effective_trigger_watts)
        mem.recent_peak_w = charge_ceiling(series.values, step, spec.safety.period_seconds)

        result = self._act(name, spec, status, now, inventory, view, mem, paced, paused)
        result.events[:0] = recovered
        self._migrate(name, spec, status, now, inventory, reader, mem, result, cluster, paused)
        self._explain(name, spec, status, generation, now, inventory, view, error, result, mem, paced, skill,
                      speculation, paused)
        return result

    def _coverage(self, name: str, spec: PowerPolicySpec, nodes: dict[str, int], query: str,
                  reader: PrometheusReader, mem: _Memory) -> Coverage | str | None:
        """Which governed nodes reported power to ``query`` (the period's power query; see
        ``telemetry.coverage``): None when it is not a plain sum (not checked), the reason to hold when
        too few did or the per-node read failed."""
        telemetry = spec.telemetry
        by_node = per_node_query(query, telemetry.node_label)
        if by_node is None:
            return None
        reported, why = reader.read_by(by_node, (telemetry.node_label,))
        if why:
            return f"per-node power could not be read to check coverage: {why}"
        cover = coverage(nodes, {k[0]: v for k, v in reported.items()}, mem.node_watts,
                         spec.workloads.watts_per_gpu, gpu_nodes_only=telemetry.source == "dcgm")
        metrics.COVERAGE.labels(name).set(cover.fraction)
        if cover.fraction < telemetry.min_coverage_fraction:
            return (f"{cover.describe()}: coverage {cover.fraction:.0%} is below "
                    f"spec.telemetry.minCoverageFraction {telemetry.min_coverage_fraction:.0%}")
        return cover

    @staticmethod
    def _skill(model: Forecaster | Persistence, spec: PowerPolicySpec, mem: _Memory, times: Any,
               values: Any) -> Skill | None:
        """The forecast's recent matured skill against persistence (planner.skill); None without a model.
        The gate starts afresh for a new network or confidence, as the bound tracker does."""
        mem.skill = skill_gate(model, spec.forecast.confidence, mem.skill)
        if mem.skill is None:
            return None
        mem.skill.settle(times, values)
        return mem.skill.judge(spec.forecast.horizon_seconds)

    @staticmethod
    def _pace(spec: PowerPolicySpec, inventory: Inventory, now: float, mem: _Memory) -> Pacing | None:
        """The battery's endurance at its recent mean discharge, and what of the cap margin it may use."""
        storage = spec.storage
        if storage is None or "battery" not in spec.workloads.ladder:
            return None
        return pace_battery(mem.pace, inventory.battery, now=now, reserve_fraction=storage.reserve_fraction,
                            pace_s=storage.endurance_seconds, cap_w=spec.budget.cap_watts,
                            trigger_w=spec.budget.effective_trigger_watts)

    def _act(self, name: str, spec: PowerPolicySpec, status: dict[str, Any], now: float, inventory: Inventory,
             view: Outlook, mem: _Memory, paced: Pacing | None, paused: bool = False) -> PeriodResult:
        safety = spec.safety
        limits = plan_limits(spec)
        ladder = tuple(r for r in spec.workloads.ladder if r != "migrate")
        charge = charge_rule(spec, inventory.battery, mem.peaks, now)
        decided = plan(PlanInput(
            policy=name, now=now, trigger_w=spec.budget.effective_trigger_watts,
            expected_peak_w=view.expected_peak_w, workload_peak_w=view.workload_peak_w,
            battery_peak_w=view.battery_peak_w, ladder=ladder,
            workloads=tuple(inventory.workloads),
            battery=inventory.battery, limits=limits, horizon_s=spec.forecast.horizon_seconds,
            period_s=safety.period_seconds, ramp_since=parse_rfc3339(status.get("lastChangeTime")), charge=charge,
            measured_w=view.load_w, recent_peak_w=mem.recent_peak_w,
            battery_credit_w=paced.credit_w if paced is not None else None,
        ))
        dry = safety.dry_run or self.force_dry_run
        actuator = KubernetesActuator(self.api, name, dry)
        guard = _strand_guard(name, inventory.stranded_battery)
        if paused:  # nothing planned is applied; a discharge of ours still stops at the reserve
            held = reserve_limit(name, inventory.battery, limits, spec.forecast.horizon_seconds, safety.period_seconds)
            planned: tuple[Action, ...] = (held,) if held is not None and inventory.battery is not None \
                and inventory.battery.managed_by == name else ()
        else:
            planned = decided.actions
        actions = planned if guard is None else (guard, *planned)
        events: list[Event] = []
        records = [dict(r) for r in status.get("recentActions", [])]
        if mem.first_period:  # a new process: what the last one left half done
            records, events = interrupted(records)
        if actions and not dry:  # intent first: a crash between here and the status write loses no record
            self._journal(name, [*records, *(action_record(a, False, now, "Intended") for a in actions)])
        outcomes = [actuator.apply(a, now) for a in actions]
        # Measured effect of the previous period's actions: the change in load since then, shared by expected watts.
        if mem.last_load is not None and mem.measure_keys:
            batch = [r for r in records if (r["time"], r["target"]) in mem.measure_keys
                     and r.get("measuredWatts") is None]
            total = sum(r["expectedWatts"] for r in batch)
            for r in batch if total else []:
                r["measuredWatts"] = round((mem.last_load - view.load_w) * r["expectedWatts"] / total, 1)
        mem.measure_keys = {(rfc3339(now), o.action.target) for o in outcomes
                            if o.applied and o.action.expected_watts != 0}
        mem.last_load = view.load_w
        for out in outcomes:
            metrics.ACTIONS.labels(name, out.action.rung, out.action.verb, str(dry).lower()).inc()
            event, record = report_outcome(out, dry, now)
            events.append(event)
            if record is not None:
                records.append(record)
        applied = [o for o in outcomes if o.applied]
        new_status = {**status, "recentActions": records[-RECENT_ACTIONS:]}
        if charge is not None:
            new_status["chargeTargetFraction"] = round(charge.target_fraction, 4)
            new_status["tariffPeriod"] = "OffPeak" if charge.off_peak else "Peak"
        if applied:
            new_status["lastChangeTime"] = rfc3339(now)
        would = sum(a.expected_watts for a in decided.actions if a.expected_watts > 0)
        metrics.WOULD_SHAVE.labels(name).set(would if dry else 0)
        mem.first_period = False
        return PeriodResult(new_status, events, decided, outcomes)

    def _journal(self, name: str, records: list[dict[str, Any]]) -> None:
        """Write ``records`` as status.recentActions now, before the actions they announce are applied.
        A failed write is logged and the actions still go ahead: the cap outranks the record."""
        try:
            client.CustomObjectsApi(self.api).patch_cluster_custom_object_status(
                API_GROUP, API_VERSION, PLURAL, name, {"status": {"recentActions": records[-RECENT_ACTIONS:]}})
        except TRANSPORT_ERRORS as exc:
            log.warning("intended actions of %s not recorded before applying them: %s", name, exc)

    def _migrate(self, name: str, spec: PowerPolicySpec, status: dict[str, Any], now: float, inventory: Inventory,
                 reader: PrometheusReader, mem: _Memory, result: PeriodResult, cluster: ClusterObjects,
                 paused: bool = False) -> None:
        """Follow renewable surplus (spec.migration): status.sites and status.migrations, Events. Paused,
        moves are judged and reported as in dry-run, and none starts or advances."""
        dry = spec.safety.dry_run or self.force_dry_run or paused
        try:
            moved = self.migration.run(name, spec, inventory, reader, now, dry, status.get("migrations") or [],
                                       mem.said, cluster)
        except client.ApiException as exc:
            message = f"migration step failed: {exc.status} {exc.reason}"
            inventory.notes.append(message)
            result.events.append(Event("Warning", "MigrationFailed", message))
            return
        inventory.notes.extend(moved.notes)
        result.events.extend(moved.events)
        if spec.migration.enabled:
            result.status.update({"sites": moved.sites, "migrations": moved.migrations})
        else:  # turned off: clear what an earlier period reported (null removes a field in a merge patch)
            result.status.update({key: None for key in ("sites", "migrations") if key in result.status})

    def _explain(self, name: str, spec: PowerPolicySpec, status: dict[str, Any], generation: int | None, now: float,
                 inventory: Inventory, view: Outlook, error: float | None, result: PeriodResult,
                 mem: _Memory, paced: Pacing | None = None, skill: Skill | None = None,
                 speculation: Speculation | None = None, paused: bool = False) -> None:
        decided = result.plan
        assert decided is not None
        coverage = mem.bounds.coverage if mem.bounds is not None else None
        adapter = mem.adapter
        facts = PeriodFacts(
            policy=name, spec=spec, generation=generation, now=now, force_dry_run=self.force_dry_run,
            nodes=len(inventory.nodes), workloads=inventory.workloads, notes=inventory.notes,
            battery=inventory.battery, view=view, plan=decided, error=error, coverage=coverage,
            adapted=(adapter.learned, adapter.choice) if adapter is not None and adapter.learned else None,
            paced=paced, skill=skill, speculation=speculation, paused=paused)
        explained = explain(facts, status.get("conditions", []), mem.reasons.get("reactive"))
        if paused != (mem.reasons.get("paused") is not None):
            result.events.append(Event("Normal", "Paused", f"{ann.PAUSED} is set: nothing is changed or restored "
                                       "until it is removed; the battery still stops at its reserve") if paused
                                 else Event("Normal", "Resumed", f"{ann.PAUSED} removed: acting again"))
        if paused:
            mem.reasons["paused"] = "paused"
        else:
            mem.reasons.pop("paused", None)
        result.events.extend(explained.events)
        if explained.reactive_said is None:
            mem.reasons.pop("reactive", None)
        else:
            mem.reasons["reactive"] = explained.reactive_said
        result.status.update(status_fields(explained.status))
        _export(facts, inventory)


def _export(f: PeriodFacts, inventory: Inventory) -> None:
    """The policy's gauges for the period ``f`` describes."""
    name, view, spec = f.policy, f.view, f.spec
    metrics.OBSERVED.labels(name).set(view.load_w)
    metrics.FORECAST.labels(name).set(view.forecast_peak_w if view.forecast_peak_w is not None else float("nan"))
    metrics.BUDGET.labels(name).set(spec.budget.cap_watts)
    metrics.TRIGGER.labels(name).set(spec.budget.effective_trigger_watts)
    metrics.PEAK_RISK.labels(name).set(view.peak_risk if view.peak_risk is not None else float("nan"))
    metrics.FORECAST_ERROR.labels(name).set(f.error if f.error is not None else float("nan"))
    metrics.BOUND_COVERAGE.labels(name).set(f.coverage if f.coverage is not None else float("nan"))
    metrics.REACTIVE.labels(name).set(1 if view.mode == "reactive" else 0)
    ratio = f.skill.median_ratio if f.skill is not None else None
    metrics.SKILL.labels(name).set(ratio if ratio is not None else float("nan"))
    metrics.SHAVED.labels(name).set(shaved_watts(f.changed))
    metrics.UNCOVERED.labels(name).set(f.plan.uncovered_w)
    if spec.storage is not None:
        battery = inventory.battery
        metrics.BATTERY_READY.labels(name).set(1 if battery is not None else 0)
        metrics.BATTERY_SOC.labels(name).set(battery.soc_fraction if battery is not None else float("nan"))
        metrics.BATTERY_SETPOINT.labels(name).set(battery.setpoint_w if battery is not None else float("nan"))
    if f.paced is not None:
        metrics.BATTERY_ENDURANCE.labels(name).set(f.paced.endurance_s)
        metrics.BATTERY_MARGIN.labels(name).set(view.battery_margin_w)
