"""The migration step of a control period (``spec.migration``): read each site's renewable supply
and load from Prometheus, forecast how long its surplus lasts, take the next step of every move in
flight, and start the move the planner picks (``planner.migration.plan_moves``), one per period.

Kopf-free, like ``control.py``, which calls it after the ladder. What a restarted operator needs is
on the cluster: each move's steps are in the Job's ``gridshift.io/migration`` record, so the next
process simply takes the next step. Dry-run reports the move it would start and writes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from gridshift.actuators.migration import JobMigrator, StepOutcome
from gridshift.api.powerpolicy import PowerPolicySpec, Site
from gridshift.api.times import parse_rfc3339, rfc3339
from gridshift.operator import metrics
from gridshift.operator.events import Event, object_ref
from gridshift.operator.inventory import Inventory, InventoryReader, MovableJob
from gridshift.operator.objects import ClusterObjects
from gridshift.operator.queries import power_query
from gridshift.planner.migration import Candidate, JobDecision, SiteNow, plan_moves, surplus
from gridshift.telemetry.prometheus import PrometheusReader

STEP_EVENTS = {"Checkpointing": "MigrationStarted", "Suspending": "MigrationSuspended",
               "Resuming": "MigrationRetargeted", "Moved": "Migrated", "RolledBack": "MigrationRolledBack"}
MAX_ENTRIES = 50


@dataclass(frozen=True)
class SiteView:
    spec: Site
    nodes: frozenset[str]
    now: SiteNow
    status: dict[str, Any]


@dataclass
class MigrationResult:
    sites: list[dict[str, Any]] = field(default_factory=list)       # status.sites
    migrations: list[dict[str, Any]] = field(default_factory=list)  # status.migrations
    events: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)                  # for the Ready message


class MigrationStep:
    def __init__(self, api: client.ApiClient, inventory: InventoryReader):
        self.api = api
        self.inventory = inventory

    def run(self, name: str, spec: PowerPolicySpec, inventory: Inventory, reader: PrometheusReader, now: float,
            dry: bool, previous: list[dict[str, Any]], said: dict[str, str],
            cluster: ClusterObjects | None = None) -> MigrationResult:
        """One period of migration for policy ``name``. ``previous`` is the last status.migrations;
        ``said`` remembers, per Job, the last decision an Event reported (so a Job that stays for the
        same reason is not reported every period)."""
        mig = spec.migration
        result = MigrationResult()
        if not mig.enabled or not mig.sites:
            return result
        labels = self.inventory.node_labels(cluster)
        views = [self._read_site(spec, site, labels, reader, now) for site in mig.sites]
        result.sites = [v.status for v in views]
        metrics.sites(name, {v.spec.name: (v.now.surplus_w, v.status["windowSeconds"]) for v in views})
        earlier = {e.get("job"): e for e in previous}
        migrator = JobMigrator(self.api, name)
        entries: dict[str, dict[str, Any]] = {}
        candidates: list[Candidate] = []
        for job in inventory.movable:
            here = _site_of(job, views)
            if job.moving:
                if job.managed_by != name:
                    continue  # another policy's move
                record = job.record or {}
                if dry:
                    step = StepOutcome(record.get("phase", ""), False, f"{job.key}: move held (dry-run)")
                else:
                    step = migrator.advance(job.namespace, job.name, now, spec.workloads.checkpoint.deadline_seconds)
                    self._report(name, job.key, step, result)
                binding = (earlier.get(job.key) or {}).get("binding")
                entries[job.key] = _entry(job.key, here, record.get("to"), step.phase, binding, step.message, now)
                continue
            waited = _since_last_move(job, now)
            if waited is not None and waited < mig.step_seconds:
                why = f"stays: its last move ended {waited:.0f} s ago; it moves again at most once per step " \
                      f"({mig.step_seconds} s)"
                entries[job.key] = _entry(job.key, here, None, "Stays", None, why, now)
                continue
            if not job.free:
                continue  # suspended, protected, or held by the ladder: not this step's to move
            candidates.append(Candidate(job.key, job.power_w, job.checkpoint_bytes, here))

        by_key = {j.key: j for j in inventory.movable}
        for decided in plan_moves(candidates, [v.now for v in views], mig.margin_fraction):
            job = by_key[decided.key]
            entries[job.key] = self._decide(name, job, decided, views, migrator, now, dry, said, result)
        result.migrations = sorted(entries.values(), key=lambda e: e["job"])[:MAX_ENTRIES]
        for key in set(said) - {j.key for j in inventory.movable}:
            said.pop(key)
        return result

    # -- helpers --------------------------------------------------------------------------------------------------

    def _decide(self, name: str, job: MovableJob, decided: JobDecision, views: list[SiteView],
                migrator: JobMigrator, now: float, dry: bool, said: dict[str, str],
                result: MigrationResult) -> dict[str, Any]:
        d = decided.decision
        binding = d.verdict.binding if d.verdict is not None else None
        if decided.move and d.site is not None:
            if dry:
                result.notes.append(f"would move {job.key} to {d.site} (dry-run)")
                return _entry(job.key, decided.here, d.site, "WouldMove", binding, d.reason, now)
            site = next(v.spec for v in views if v.spec.name == d.site)
            selector = site.node_selector.model_dump(by_alias=True, exclude_defaults=True)
            step = migrator.start(job.namespace, job.name, d.site, selector, now, d.reason)
            self._report(name, job.key, step, result)
            if step.changed:
                said[job.key] = f"moving:{d.site}"
                return _entry(job.key, decided.here, d.site, step.phase, binding, d.reason, now)
            return _entry(job.key, decided.here, d.site, "Stays", binding, f"stays: {step.message}", now)
        # Not moving: say so on the Job when the kind of reason changes (the numbers change every period).
        gist = f"{d.site}:{d.feasible}:{binding}" if d.verdict is not None else d.reason.split(":")[0]
        if d.verdict is not None and not d.feasible and said.get(job.key) != gist:
            result.events.append(Event("Normal", "MigrationNotFeasible", f"{job.key} {d.reason}",
                                       target=object_ref(job.key)))
        said[job.key] = gist
        return _entry(job.key, decided.here, d.site if d.site != decided.here else None, "Stays", binding,
                      d.reason, now)

    def _report(self, name: str, key: str, step: StepOutcome, result: MigrationResult) -> None:
        if not step.changed:
            return
        if step.phase in ("Checkpointing", "Moved", "RolledBack"):
            metrics.MIGRATIONS.labels(name, step.phase).inc()
        kind = "Warning" if step.phase == "RolledBack" else "Normal"
        result.events.append(Event(kind, STEP_EVENTS.get(step.phase, "MigrationStep"), step.message,
                                   target=object_ref(key)))

    def _read_site(self, spec: PowerPolicySpec, site: Site, node_labels: dict[str, dict[str, str]],
                   reader: PrometheusReader, now: float) -> SiteView:
        """A site's nodes (picked from ``node_labels``), load, renewable supply and surplus history,
        and its status entry. What cannot be read is NaN (never zero) and named in the entry's message."""
        nodes = frozenset(n for n, labels in node_labels.items() if site.node_selector.matches(labels))
        step = float(spec.migration.step_seconds)
        problems: list[str] = []
        load_w = renewable_w = math.nan
        history: list[float] = []
        if not nodes:
            problems.append("no node matches the site's nodeSelector")
        else:
            tstep = spec.telemetry.step_seconds
            load = reader.read(power_query(spec, nodes), now, lookback_s=10 * tstep, step_s=tstep,
                               stale_after_s=spec.telemetry.stale_after_seconds)
            if load.latest_watts is None:
                problems.append(f"load: {load.reason}")
            else:
                load_w = load.latest_watts
        if site.renewable_query is None:
            renewable_w, history = 0.0, [0.0]
        else:
            # A day and a step of history, a whole number of steps back so that the last point is now.
            supply = reader.read(site.renewable_query, now, lookback_s=(math.ceil(86400 / step) + 1) * step,
                                 step_s=step, stale_after_s=spec.telemetry.stale_after_seconds, max_gap_s=2 * step)
            if supply.status != "ok" or supply.series is None:
                problems.append(f"renewable supply: {supply.reason}")
            else:
                history = [float(v) for v in supply.series.values]
                renewable_w = history[-1]
        surplus_hist = tuple(surplus(v, load_w, site.budget_watts) for v in history) or (math.nan,)
        now_site = SiteNow(site.name, surplus_hist[-1], 0.0, site.bandwidth_bits_per_second, surplus_hist, step)
        window = now_site.window_for(0.0)
        status: dict[str, Any] = {
            "name": site.name, "nodes": len(nodes), "renewableWatts": _round(renewable_w), "loadWatts": _round(load_w),
            "surplusWatts": _round(now_site.surplus_w), "windowSeconds": window,
        }
        if site.renewable_query is None:
            problems.append("no renewableQuery: grid power only, never a destination")
        if problems:
            status["message"] = "; ".join(problems)[:1024]
        return SiteView(site, nodes, now_site, status)


def _site_of(job: MovableJob, views: list[SiteView]) -> str | None:
    """The site whose nodes all the Job's running pods are on."""
    if not job.nodes:
        return None
    return next((v.spec.name for v in views if job.nodes <= v.nodes), None)


def _since_last_move(job: MovableJob, now: float) -> float | None:
    """Seconds since the Job's last move ended (Moved or RolledBack), or None."""
    record = job.record or {}
    steps = record.get("steps") or []
    if record.get("phase") not in ("Moved", "RolledBack") or not steps:
        return None
    ended = parse_rfc3339(steps[-1][1]) if isinstance(steps[-1], list) and len(steps[-1]) == 2 else None
    return None if ended is None else now - ended


def _entry(job: str, site: str | None, destination: str | None, phase: str, binding: str | None, reason: str,
           now: float) -> dict[str, Any]:
    return {"job": job, "site": site, "destination": destination, "phase": phase, "binding": binding,
            "reason": reason[:1024], "time": rfc3339(now)}


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 1)
