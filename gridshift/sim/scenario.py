"""Simulation scenarios in YAML: the site, its workloads, its battery and the PowerPolicy to run.

A scenario file is validated field by field (every error names its path, e.g.
``training.work``) and then turned into a :class:`~gridshift.sim.site.SiteModel` and a
:class:`~gridshift.sim.peak.Setup`. Its ``policy`` section is a real ``PowerPolicy`` spec
(``gridshift.io/v1alpha1``, the same pydantic model the operator validates) without ``budget``,
which the scenario's ``budget`` section fills in: what you simulate is what you apply.

Quantities take units: durations ``90s``, ``15min``, ``8h`` (a bare number is seconds), power
``900W``, ``1.4kW``, ``2MW`` (a bare number is watts), energy ``200kWh``. Ranges are two-item lists
``[low, high]``. Bundled scenarios live in ``gridshift/sim/scenarios/`` and are named by their
file stem (``gridshift simulate --scenario training-64``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import numpy as np
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.ess.physics import BatteryPhysics
from gridshift.forecaster.runtime import Forecaster
from gridshift.planner.policy import peak_windows, plan_limits, workload_confidence
from gridshift.planner.units import UnitError, parse_duration, parse_power
from gridshift.sim.peak import STRATEGIES, Battery, Progress, Result, Setup, Strategy, simulate
from gridshift.sim.site import JobSpec, ServiceSpec, SiteModel, TraceBank, utilisation_profile
from gridshift.telemetry.traces import TraceError, load_series


class ScenarioError(ValueError):
    """A scenario that cannot be read or built; the message names the field."""


def _quantity(parse: Any) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a quantity, got a boolean")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return parse(value)
            except UnitError as exc:
                raise ValueError(str(exc)) from exc
        raise ValueError(f"expected a number or a quantity with a unit, got {type(value).__name__}")
    return BeforeValidator(check)


def _energy(text: str) -> float:
    match = re.fullmatch(r"\s*(.*?)h\s*", text)
    if not match:
        raise UnitError(f"energy: cannot read {text!r}; write e.g. 200kWh or 1.5MWh")
    return parse_power(match.group(1), "energy")


Seconds = Annotated[float, _quantity(lambda t: parse_duration(t, "duration")), Field(gt=0)]
Watts = Annotated[float, _quantity(lambda t: parse_power(t, "power")), Field(ge=0)]
WattHours = Annotated[float, _quantity(_energy), Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def _ordered(pair: Sequence[float], name: str) -> None:
    if pair[0] > pair[1]:
        raise ValueError(f"{name}: low {pair[0]:g} is above high {pair[1]:g}")


class SiteSection(_Model):
    nodes: int = Field(default=0, ge=0, le=100_000, description="GPU nodes in the training pool.")
    gpus_per_node: int = Field(default=8, ge=1, le=64)
    idle_node_watts: Watts = Field(default=900.0, description="What a node draws when no job runs on it.")
    other_load_watts: Watts = Field(default=0.0, description="Constant load besides the GPUs (cooling, storage).")


class BudgetSection(_Model):
    cap_watts: Watts | None = Field(default=None, description="The contracted peak.")
    cap_of_peak: float | None = Field(
        default=None, gt=0, le=2, description="Or: the cap as a fraction of the uncontrolled site's highest second.")
    trigger_fraction: float = Field(default=0.95, gt=0, lt=1, description="Trigger as a fraction of the cap.")

    @model_validator(mode="after")
    def _one_cap(self) -> BudgetSection:
        if (self.cap_watts is None) == (self.cap_of_peak is None):
            raise ValueError("give exactly one of capWatts and capOfPeak")
        return self


class TrainingSection(_Model):
    mean_interarrival: Seconds | None = Field(default=None, description="Poisson job arrivals; unset: none.")
    sizes: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 2, 4, 8], min_length=1,
                                                     description="Nodes per job, drawn uniformly.")
    work: tuple[Seconds, Seconds] = Field(default=(3600.0, 8 * 3600.0),
                                          description="Running time a job needs, log-uniform [low, high].")
    checkpoint: tuple[Seconds, Seconds] = Field(default=(30.0, 180.0), description="Checkpoint write time.")
    restore: tuple[Seconds, Seconds] = Field(default=(60.0, 180.0), description="Reload time after a resume.")
    checkpoint_interval: Seconds = Field(default=1800.0, description="The jobs' own periodic checkpoints.")
    priorities: tuple[int, int] = Field(default=(0, 10), description="Priority, uniform integers [low, high].")
    protected_fraction: float = Field(default=0.0, ge=0, le=1, description="Share of jobs that may not be touched.")
    fill_at_start: bool = Field(default=True, description="Start with the pool full of jobs part-way through.")

    @model_validator(mode="after")
    def _ranges(self) -> TrainingSection:
        for name in ("work", "checkpoint", "restore", "priorities"):
            _ordered(getattr(self, name), to_camel(name))
        return self


class UtilisationSection(_Model):
    base: float = Field(default=0.6, ge=0, le=1)
    amplitude: float = Field(default=0.3, ge=0, le=1)
    peak_hour: float = Field(default=15.0, ge=0, lt=24, description="Local hour of the daily peak.")
    noise: float = Field(default=0.05, ge=0, le=1)


class ServiceSection(_Model):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    replicas: int = Field(ge=1, le=100_000)
    floor: int = Field(default=0, ge=0)
    watts_per_replica: Watts
    idle_watts_per_replica: Watts = 0.0
    drain: Seconds = 30.0
    startup: Seconds = 90.0
    priority: int = 0
    protected: bool = False
    utilisation: UtilisationSection = Field(default_factory=UtilisationSection)

    @model_validator(mode="after")
    def _floor(self) -> ServiceSection:
        if self.floor > self.replicas:
            raise ValueError(f"floor {self.floor} is above replicas {self.replicas}")
        return self


class BatterySection(_Model):
    capacity: WattHours
    max_charge: Watts = Field(gt=0)
    max_discharge: Watts = Field(gt=0)
    round_trip_efficiency: float = Field(default=0.9, gt=0, le=1)
    initial_soc: float = Field(default=0.8, ge=0, le=1)
    response: Seconds = 1.0


class ScenarioFile(_Model):
    name: str = Field(min_length=1, max_length=63)
    description: str = ""
    seed: int = 0
    start: dt.datetime = Field(default=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
                               description="When the simulation starts (the tariff's clock), ISO 8601.")
    duration: Seconds = 86400.0
    traces: list[str] = Field(default_factory=list, description="Node-power trace files (globs), relative to "
                                                                "the trace directory.")
    site: SiteSection = Field(default_factory=SiteSection)
    budget: BudgetSection
    training: TrainingSection | None = None
    inference: list[ServiceSection] = Field(default_factory=list)
    battery: BatterySection | None = None
    policy: dict[str, Any] = Field(default_factory=dict, description="A PowerPolicy spec without budget.")
    demand_price_per_kw: float = Field(default=15.0, ge=0)
    strategies: list[Strategy] = Field(default_factory=lambda: list(STRATEGIES))

    @model_validator(mode="after")
    def _parts(self) -> ScenarioFile:
        if self.training is not None and (self.site.nodes == 0 or not self.traces):
            raise ValueError("training needs site.nodes and at least one file in traces")
        if self.training is not None and max(self.training.sizes) > self.site.nodes:
            raise ValueError(f"training.sizes: a job of {max(self.training.sizes)} nodes does not fit "
                             f"site.nodes {self.site.nodes}")
        if self.training is None and not self.inference and self.site.other_load_watts == 0:
            raise ValueError("the site has no load: give training, inference or site.otherLoadWatts")
        names = [s.name for s in self.inference]
        if len(names) != len(set(names)):
            raise ValueError("inference: service names must be unique")
        if "budget" in self.policy:
            raise ValueError("policy.budget: the scenario's budget section sets it")
        if self.policy.get("storage") is not None and self.battery is None:
            raise ValueError("policy.storage: the scenario has no battery section")
        return self


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: the file, where it came from, and the policy it runs."""

    file: ScenarioFile
    source: str

    @property
    def seconds(self) -> int:
        return int(self.file.duration)

    @property
    def start_time(self) -> float:
        return self.file.start.timestamp()

    def policy(self, cap_w: float) -> PowerPolicySpec:
        """The scenario's PowerPolicy spec with the budget for ``cap_w``."""
        doc = dict(self.file.policy)
        if self.file.battery is not None and doc.get("storage") is None:
            doc["storage"] = {"energyStorageRef": "sim"}
        doc["budget"] = {"capWatts": cap_w, "triggerWatts": self.file.budget.trigger_fraction * cap_w}
        try:
            return PowerPolicySpec.model_validate(doc)
        except ValidationError as exc:
            raise ScenarioError(f"{self.source}: " + _errors(exc, "policy")) from exc

    def cap_w(self, uncontrolled_w: np.ndarray) -> float:
        """budget.capWatts, or budget.capOfPeak of the uncontrolled site's highest second."""
        budget = self.file.budget
        if budget.cap_watts is not None:
            return budget.cap_watts
        assert budget.cap_of_peak is not None
        return budget.cap_of_peak * float(np.max(uncontrolled_w))

    def setup(self, cap_w: float) -> Setup:
        """The simulator's setup for the scenario's policy at ``cap_w``."""
        spec = self.policy(cap_w)
        storage, bat = spec.storage, self.file.battery
        battery = None
        if bat is not None and storage is not None:
            battery = Battery(BatteryPhysics(capacity_wh=bat.capacity, max_charge_w=bat.max_charge,
                                             max_discharge_w=bat.max_discharge,
                                             round_trip_efficiency=bat.round_trip_efficiency,
                                             soc_fraction=bat.initial_soc),
                              reserve_fraction=storage.reserve_fraction, response_s=int(bat.response))
        return Setup(cap_w=cap_w, trigger_w=spec.budget.effective_trigger_watts, battery=battery,
                     period_s=spec.safety.period_seconds, horizon_s=spec.forecast.horizon_seconds,
                     confidence=spec.forecast.confidence, ladder=tuple(spec.workloads.ladder),
                     limits=plan_limits(spec), recharge=bool(storage and storage.recharge),
                     charge_target_fraction=storage.charge_target_fraction if storage else None,
                     max_charge_w=storage.max_charge_watts if storage else None,
                     dwell_s=float(storage.min_dwell_seconds) if storage else 0.0,
                     endurance_s=float(storage.endurance_seconds) if storage else 0.0,
                     peak_windows=peak_windows(spec), time_zone=spec.tariff.time_zone,
                     demand_price_per_kw=self.file.demand_price_per_kw, start_time=self.start_time,
                     workload_confidence=workload_confidence(spec))

    def site(self, traces: Sequence[np.ndarray] = (), seconds: int | None = None) -> SiteModel:
        """The site, its jobs drawn with the scenario's seed. ``traces``: the node-power series
        the jobs replay (see :func:`read_traces`)."""
        f = self.file
        n = self.seconds if seconds is None else seconds
        rng = np.random.default_rng(f.seed)
        bank = TraceBank.of(traces) if traces else None
        jobs = _jobs(f, bank, n, rng) if f.training is not None and bank is not None else ()
        local = f.start.astimezone(ZoneInfo(self.policy(1.0).tariff.time_zone))
        start_hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        services = tuple(
            ServiceSpec(s.name, s.replicas, s.watts_per_replica,
                        utilisation_profile(n, start_hour=start_hour, peak_hour=s.utilisation.peak_hour,
                                            base=s.utilisation.base, amplitude=s.utilisation.amplitude,
                                            noise=s.utilisation.noise, seed=f.seed + 1 + k),
                        floor=s.floor, idle_watts_per_replica=s.idle_watts_per_replica, drain_s=int(s.drain),
                        startup_s=int(s.startup), priority=s.priority, protected=s.protected)
            for k, s in enumerate(f.inference))
        other = np.full(n, f.site.other_load_watts) if f.site.other_load_watts else None
        return SiteModel(seconds=n, nodes=f.site.nodes, gpus_per_node=f.site.gpus_per_node,
                         idle_node_w=f.site.idle_node_watts, jobs=jobs, services=services, bank=bank,
                         background_w=other)


@dataclass
class Comparison:
    cap_w: float
    setup: Setup
    results: dict[str, Result]


def compare(scenario: Scenario, site: SiteModel, strategies: Sequence[Strategy], model: Forecaster | None = None,
            progress: Callable[[str], Progress | None] | None = None) -> Comparison:
    """Every strategy on the same site. The uncontrolled run comes first: it sizes a cap given as
    a fraction of the peak (budget.capOfPeak). ``progress(label)`` gives each run's progress callback."""
    cap = scenario.file.budget.cap_watts
    if cap is None:
        free = simulate(site, scenario.setup(1e9), "none", progress=progress("calibrate") if progress else None)
        cap = scenario.cap_w(free.load_w)
    setup = scenario.setup(cap)
    results = {s: simulate(site, setup, s, model=model, progress=progress(s) if progress else None)
               for s in strategies}
    return Comparison(cap, setup, results)


def _jobs(f: ScenarioFile, bank: TraceBank, seconds: int, rng: np.random.Generator) -> tuple[JobSpec, ...]:
    t = f.training
    assert t is not None
    jobs: list[JobSpec] = []

    def draw(arrival: int, free: int | None = None) -> JobSpec:
        sizes = [s for s in t.sizes if free is None or s <= free]
        work = int(math.exp(rng.uniform(math.log(t.work[0]), math.log(t.work[1]))))
        trace = int(rng.integers(len(bank)))
        done = int(rng.uniform(0, 0.9 * work)) if free is not None else 0
        return JobSpec(name=f"job-{len(jobs):05d}", arrival_s=arrival, nodes=int(rng.choice(sizes)), work_s=work,
                       trace=trace, offset=int(rng.integers(bank.lengths[trace])),
                       priority=int(rng.integers(t.priorities[0], t.priorities[1] + 1)),
                       checkpoint_s=int(rng.uniform(*t.checkpoint)), restore_s=int(rng.uniform(*t.restore)),
                       checkpoint_interval_s=int(t.checkpoint_interval),
                       protected=bool(rng.random() < t.protected_fraction), done_s=done)

    if t.fill_at_start:
        free = f.site.nodes
        while free >= min(t.sizes):
            jobs.append(draw(0, free))
            free -= jobs[-1].nodes
    if t.mean_interarrival is not None:
        at = rng.exponential(t.mean_interarrival)
        while at < seconds:
            jobs.append(draw(int(at)))
            at += rng.exponential(t.mean_interarrival)
    return tuple(jobs)


def _errors(exc: ValidationError, prefix: str = "") -> str:
    def where(loc: tuple[Any, ...]) -> str:
        path = ".".join(to_camel(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        return f"{prefix}.{path}" if prefix and path else (prefix or path or "scenario")
    return "; ".join(f"{where(e['loc'])}: {e['msg']}" for e in exc.errors())


def bundled() -> dict[str, Path]:
    """The scenarios that ship with gridshift, by name."""
    folder = Path(str(resources.files("gridshift.sim") / "scenarios"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def parse(text: str, source: str = "scenario") -> Scenario:
    """A scenario from YAML text; every problem in one :class:`ScenarioError` naming its fields."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ScenarioError(f"{source}: a scenario is a YAML mapping, got {type(doc).__name__}")
    try:
        scenario = Scenario(ScenarioFile.model_validate(doc), source)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_errors(exc)}") from exc
    scenario.policy(1.0)  # the policy section is checked before any simulation runs
    return scenario


def load(name_or_path: str | Path) -> Scenario:
    """A bundled scenario by name, or a scenario file."""
    path = bundled().get(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(f"no scenario {str(name_or_path)!r}: not a file, and the bundled ones are "
                            f"{', '.join(bundled())}")
    return parse(path.read_text(), str(path))


def read_traces(scenario: Scenario, trace_dir: str | Path) -> list[np.ndarray]:
    """The node-power series the scenario's ``traces`` name, under ``trace_dir``, at 1 s, each
    gap-free segment of at least ten minutes one series."""
    root = Path(trace_dir)
    out: list[np.ndarray] = []
    for k, pattern in enumerate(scenario.file.traces):
        paths = sorted(root.glob(pattern))
        if not paths:
            raise ScenarioError(f"{scenario.source}: traces[{k}]: no file matches {pattern!r} under {root}")
        try:
            out.extend(s.values for s in load_series([str(p) for p in paths], 1.0, 5.0, min_length=600))
        except (OSError, TraceError) as exc:
            raise ScenarioError(f"{scenario.source}: traces[{k}]: {exc}") from exc
    if scenario.file.traces and not out:
        raise ScenarioError(f"{scenario.source}: traces: no gap-free segment of ten minutes in the files")
    return out
