"""The site the simulator acts on, second by second: training jobs that replay real node power traces
on a pool of GPU nodes, elastic inference services, and the rest of the site's load.

Pure numpy, no I/O. Actions take effect with the delays they have in a real cluster:

- a **scale-down** lowers the Deployment's replicas at once (what the planner sees next period) but
  each replica keeps drawing power for ``drain_s`` while it drains; a **scale-up** draws power
  ``startup_s`` later (scheduling, image pull, model load);
- a **checkpoint** request completes ``checkpoint_s`` after it was asked (the job keeps running and
  drawing power meanwhile); a **suspend** stops the job at once, its nodes idle and the work since
  its last checkpoint (gridshift's, or the job's own periodic one) is lost; a **resume** holds the
  nodes idle for ``restore_s`` (reload) before the job runs on from where it stopped.

Jobs arrive by the scenario's arrival times and start first-fit on free nodes in arrival order; a
suspended job keeps its nodes (Kueue would release them: here a suspension never admits other work,
which keeps the strategies comparable). Every node draws ``idle_node_w`` when no job runs on it.

:class:`Cluster` is the state; :meth:`Cluster.advance` returns the site's load over the next seconds
assuming no new action, which is also how the oracle sees the future (on a :meth:`Cluster.fork`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from gridshift.planner.admission import Gated
from gridshift.planner.ladder import Action, Workload


class JobState(IntEnum):
    """Where a job stands; ``Cluster.state`` holds one per job (as int8)."""

    QUEUED = 0      # arrived, waiting for free nodes
    RUNNING = 1
    SUSPENDED = 2   # holds its nodes, idle
    RESUMING = 3    # holds its nodes, reloading until resume_at
    DONE = 4


QUEUED, RUNNING, SUSPENDED, RESUMING, DONE = JobState
JOB_NAMESPACE = "batch"
SERVICE_NAMESPACE = "inference"
_NEVER = 1 << 40


@dataclass(frozen=True)
class TraceBank:
    """Node power traces (watts at 1 s), concatenated, that jobs replay from an offset, looping."""

    values: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, traces: Sequence[np.ndarray]) -> TraceBank:
        arrays = [np.asarray(t, dtype=float) for t in traces]
        if not arrays or any(len(a) == 0 for a in arrays):
            raise ValueError("a trace bank needs at least one non-empty trace")
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(np.concatenate(arrays), starts, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def mean(self, k: int) -> float:
        return float(self.values[self.starts[k]:self.starts[k] + self.lengths[k]].mean())


@dataclass(frozen=True)
class JobSpec:
    """A batch training job on ``nodes`` whole nodes, every node drawing trace ``trace`` (from
    ``offset``) while it runs. ``work_s`` is the running time it needs; ``done_s`` of it is already
    done when it arrives (a job that was running when the simulation starts)."""

    name: str
    arrival_s: int
    nodes: int
    work_s: int
    trace: int
    offset: int = 0
    priority: int = 0
    checkpoint_s: int = 60
    restore_s: int = 60
    checkpoint_interval_s: int = 1800
    protected: bool = False
    done_s: int = 0


@dataclass(frozen=True)
class ServiceSpec:
    """An elastic inference Deployment: ``replicas`` at most (its natural size), never below
    ``floor``. A replica draws ``watts_per_replica`` times the service's utilisation of that second
    while it serves, ``idle_watts_per_replica`` while its accelerator is released."""

    name: str
    replicas: int
    watts_per_replica: float
    utilisation: np.ndarray = field(repr=False)
    floor: int = 0
    idle_watts_per_replica: float = 0.0
    drain_s: int = 30
    startup_s: int = 60
    priority: int = 0
    protected: bool = False


@dataclass(frozen=True)
class SiteModel:
    """What the site is made of. A site with only ``background_w`` replays a fixed load."""

    seconds: int
    nodes: int = 0
    gpus_per_node: int = 8
    idle_node_w: float = 0.0
    jobs: tuple[JobSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    bank: TraceBank | None = None
    background_w: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.jobs and self.bank is None:
            raise ValueError("jobs need a trace bank")
        for j in self.jobs:
            if not 0 < j.nodes <= self.nodes:
                raise ValueError(f"job {j.name}: nodes must be between 1 and the site's {self.nodes}, got {j.nodes}")
            if self.bank is not None and not 0 <= j.trace < len(self.bank):
                raise ValueError(f"job {j.name}: no trace {j.trace} in the bank")
        for s in self.services:
            if len(s.utilisation) < self.seconds:
                raise ValueError(f"service {s.name}: utilisation covers {len(s.utilisation)} of {self.seconds} s")
            if not 0 <= s.floor <= s.replicas:
                raise ValueError(f"service {s.name}: floor must be between 0 and replicas")
        if self.background_w is not None and len(self.background_w) < self.seconds:
            raise ValueError(f"background load covers {len(self.background_w)} of {self.seconds} s")

    @classmethod
    def of_load(cls, load_w: Sequence[float] | np.ndarray) -> SiteModel:
        load = np.asarray(load_w, dtype=float)
        return cls(seconds=len(load), background_w=load)


@dataclass
class Accounting:
    """What the actions cost the workloads, in GPU-seconds and replica-seconds."""

    postponed_gpu_s: float = 0.0   # GPUs held idle by a suspension or a reload
    lost_gpu_s: float = 0.0        # work since the last checkpoint, redone after a suspension
    shed_replica_s: float = 0.0    # inference replicas not serving below their natural count
    gated_gpu_s: float = 0.0       # GPUs of jobs held at the door (admission) while their nodes were free
    jobs_completed: int = 0
    checkpoints: int = 0
    suspensions: int = 0

    @property
    def job_delay_gpu_h(self) -> float:
        return (self.postponed_gpu_s + self.lost_gpu_s + self.gated_gpu_s) / 3600.0


class Cluster:
    """The mutable state of a :class:`SiteModel` at second ``now`` (from 0)."""

    def __init__(self, site: SiteModel, start_time: float = 0.0, policy: str = "sim"):
        self.site = site
        self.start_time = start_time
        self.policy = policy
        self.now = 0
        jobs = site.jobs
        order = sorted(range(len(jobs)), key=lambda k: (jobs[k].arrival_s, k))
        self._order = order                       # arrival order
        self._next = 0                            # next job (in arrival order) not yet queued
        self.queue: list[int] = []
        self.free = site.nodes
        n = len(jobs)
        self.state = np.full(n, QUEUED, dtype=np.int8)
        self.progress = np.array([j.done_s for j in jobs], dtype=np.int64)
        self.saved = np.array([j.done_s for j in jobs], dtype=np.int64)  # progress at gridshift's last checkpoint
        self.resume_at = np.zeros(n, dtype=np.int64)
        self.ckpt_asked = np.full(n, -1, dtype=np.int64)
        self.ckpt_done = np.zeros(n, dtype=bool)
        self.last_action = np.full(n, -1, dtype=np.int64)
        self.managed = np.zeros(n, dtype=bool)
        self.held: list[int] = []                 # jobs holding nodes: running, suspended or resuming
        self.gating = False                       # admission: a queued job starts only once admitted
        self.admitted: set[int] = set()
        self.gated_since = np.full(n, -1, dtype=np.int64)  # when a job first fitted free nodes but was held
        bank = site.bank
        self._nodes = np.array([j.nodes for j in jobs], dtype=np.int64)
        self._work = np.array([j.work_s for j in jobs], dtype=np.int64)
        self._base = np.array([bank.starts[j.trace] for j in jobs], dtype=np.int64) if bank else np.zeros(0, np.int64)
        self._len = np.array([bank.lengths[j.trace] for j in jobs], dtype=np.int64) if bank else np.ones(0, np.int64)
        self._offset = np.array([j.offset for j in jobs], dtype=np.int64)
        self._wpr = [max(0.0, bank.mean(j.trace) - site.idle_node_w) if bank else 0.0 for j in jobs]
        self._keys = {f"Job/{JOB_NAMESPACE}/{j.name}": k for k, j in enumerate(jobs)}
        services = site.services
        self.replicas = [s.replicas for s in services]           # what the Deployment asks for now
        self.serving = [s.replicas for s in services]            # replicas drawing power now
        self.changes: list[list[tuple[int, int]]] = [[] for _ in services]  # (second, serving from then)
        self.svc_original: list[int | None] = [None] * len(services)
        self.svc_last_action = [-1] * len(services)
        self._svc_keys = {f"Deployment/{SERVICE_NAMESPACE}/{s.name}": k for k, s in enumerate(services)}
        self._cache: dict[int, Workload] = {}
        self.acct = Accounting()

    # ---- the clock --------------------------------------------------------------------------

    # What never changes after __init__: shared by forks, every other field is copied.
    _SHARED = frozenset({"site", "start_time", "policy", "_order", "_nodes", "_work", "_base", "_len", "_offset",
                         "_wpr", "_keys", "_svc_keys"})

    def fork(self) -> Cluster:
        """An independent copy of the state that shares the site (traces are never copied)."""
        other = object.__new__(Cluster)
        for name, value in self.__dict__.items():
            other.__dict__[name] = value if name in self._SHARED else copy.deepcopy(value)
        return other

    def schedule(self) -> None:
        """Queue the jobs that have arrived; start queued ones first-fit in arrival order (with
        ``gating``, only admitted ones: the others that fit are held at the door)."""
        jobs = self.site.jobs
        while self._next < len(self._order) and jobs[self._order[self._next]].arrival_s <= self.now:
            self.queue.append(self._order[self._next])
            self._next += 1
        if not self.queue or self.free <= 0:
            return
        waiting = []
        for k in self.queue:
            if jobs[k].nodes <= self.free and self.gating and k not in self.admitted and not jobs[k].protected:
                if self.gated_since[k] < 0:
                    self.gated_since[k] = self.now
                waiting.append(k)
            elif jobs[k].nodes <= self.free:
                self.free -= jobs[k].nodes
                self.state[k] = RUNNING
                self.held.append(k)
                self._cache.pop(k, None)
            else:
                waiting.append(k)
        self.queue = waiting

    def advance(self, seconds: int) -> np.ndarray:
        """The site's load (W) for each of the next ``seconds``, assuming no new action; the state
        moves on by as much."""
        site = self.site
        n = max(0, min(seconds, site.seconds - self.now))
        i = self.now
        self.schedule()
        if self.gating:
            held_nodes = sum(site.jobs[k].nodes for k in self._at_the_door())
            self.acct.gated_gpu_s += float(held_nodes * site.gpus_per_node * n)
        load = np.full(n, site.nodes * site.idle_node_w)
        if site.background_w is not None:
            load += site.background_w[i:i + n]
        if self.held:
            self._jobs_power(load, i, n)
        for k in range(len(site.services)):
            self._service_power(load, k, i, n)
        self.now = i + n
        return load

    def gated(self) -> list[Gated]:
        """The jobs held at the door now (they fit the free nodes but are not admitted), with the
        power they will draw: their trace's mean above idle on every node."""
        jobs = self.site.jobs
        return [Gated(f"Job/{JOB_NAMESPACE}/{jobs[k].name}", jobs[k].nodes * self._wpr[k], jobs[k].priority,
                      float(self.now - self.gated_since[k])) for k in self._at_the_door()]

    def _at_the_door(self) -> list[int]:
        """Queued jobs held by the gate: not admitted, and first-fit on the free nodes."""
        free, out = self.free, []
        for k in self.queue:
            nodes = self.site.jobs[k].nodes
            if self.gated_since[k] >= 0 and k not in self.admitted and nodes <= free:
                out.append(k)
                free -= nodes
        return out

    def admit(self, keys: Sequence[str]) -> None:
        """Let these gated jobs start (at the next schedule)."""
        self.admitted.update(self._keys[key] for key in keys)

    def _jobs_power(self, load: np.ndarray, i: int, n: int) -> None:
        idx = np.array(self.held, dtype=np.int64)
        state = self.state[idx]
        r0 = np.where(state == RUNNING, 0, np.where(state == RESUMING, np.maximum(self.resume_at[idx] - i, 0), _NEVER))
        s = np.arange(n)
        run = s[None, :] - r0[:, None]
        prog = self.progress[idx][:, None] + run
        running = (run >= 0) & (prog < self._work[idx][:, None])
        bank = self.site.bank
        assert bank is not None
        at = self._base[idx][:, None] + (self._offset[idx][:, None] + prog) % self._len[idx][:, None]
        node_w = bank.values[at] - self.site.idle_node_w
        load += (self._nodes[idx][:, None] * np.where(running, node_w, 0.0)).sum(axis=0)
        ran = running.sum(axis=1)
        gpus = self._nodes[idx] * self.site.gpus_per_node
        # What the pause cost: a suspended job's whole interval, a reloading one's until it runs.
        paused = np.where(state == SUSPENDED, n, np.where(state == RESUMING, np.minimum(n, np.maximum(r0, 0)), 0))
        self.acct.postponed_gpu_s += float((gpus * paused).sum())
        before = self.progress[idx].copy()
        self.progress[idx] += ran
        for pos, k in enumerate(idx.tolist()):
            if self.state[k] == RESUMING and self.resume_at[k] <= i + n:
                self.state[k] = RUNNING
                self._cache.pop(k, None)
            asked = self.ckpt_asked[k]
            if asked >= 0 and not self.ckpt_done[k]:
                ready = max(asked, self.resume_at[k]) + self.site.jobs[k].checkpoint_s
                if ready <= i + n:
                    self.ckpt_done[k] = True
                    self.saved[k] = before[pos] + min(int(ran[pos]), max(0, ready - i - int(r0[pos])))
                    self.acct.checkpoints += 1
                    self._cache.pop(k, None)
            if self.progress[k] >= self._work[k]:
                self.state[k] = DONE
                self.free += self.site.jobs[k].nodes
                self.acct.jobs_completed += 1
                self._cache.pop(k, None)
        self.held = [k for k in self.held if self.state[k] != DONE]

    def _service_power(self, load: np.ndarray, k: int, i: int, n: int) -> None:
        svc = self.site.services[k]
        serving = np.full(n, self.serving[k], dtype=float)
        pending = []
        for at, value in self.changes[k]:
            if at < i + n:
                serving[max(0, at - i):] = value
                self.serving[k] = value
            else:
                pending.append((at, value))
        self.changes[k] = pending
        util = svc.utilisation[i:i + n]
        load += serving * svc.watts_per_replica * util + (svc.replicas - serving) * svc.idle_watts_per_replica
        self.acct.shed_replica_s += float((svc.replicas - serving).sum())

    # ---- what the planner sees --------------------------------------------------------------

    def _epoch(self, second: int) -> float | None:
        return None if second < 0 else self.start_time + second

    def workloads(self) -> tuple[Workload, ...]:
        """Every job that holds nodes and every service, as the operator's inventory lists them."""
        out = []
        for k in self.held:
            w = self._cache.get(k)
            if w is None:
                j = self.site.jobs[k]
                w = Workload("Job", JOB_NAMESPACE, j.name, replicas=j.nodes, watts_per_replica=self._wpr[k],
                             suspendable=True, priority=j.priority, protected=j.protected,
                             suspended=bool(self.state[k] == SUSPENDED),
                             managed_by=self.policy if self.managed[k] else None,
                             last_action_at=self._epoch(int(self.last_action[k])),
                             checkpoint_requested_at=self._epoch(int(self.ckpt_asked[k])),
                             checkpoint_completed=bool(self.ckpt_done[k]))
                self._cache[k] = w
            out.append(w)
        for k, svc in enumerate(self.site.services):
            util = float(svc.utilisation[min(self.now, self.site.seconds - 1)])
            out.append(Workload("Deployment", SERVICE_NAMESPACE, svc.name, replicas=self.replicas[k],
                                watts_per_replica=max(0.0, svc.watts_per_replica * util - svc.idle_watts_per_replica),
                                priority=svc.priority, floor=svc.floor, protected=svc.protected,
                                managed_by=self.policy if self.svc_original[k] is not None else None,
                                original_replicas=self.svc_original[k],
                                last_action_at=self._epoch(self.svc_last_action[k])))
        return tuple(out)

    # ---- actions ----------------------------------------------------------------------------

    def apply(self, action: Action) -> bool:
        """Carry out one workload action now, as the actuator would. False: not a workload of
        this site (the battery's actions are the simulator's)."""
        if action.target in self._svc_keys:
            self._apply_service(self._svc_keys[action.target], action)
            return True
        k = self._keys.get(action.target)
        if k is None:
            return False
        self._cache.pop(k, None)
        self.last_action[k] = self.now
        if action.verb == "checkpoint":
            self.ckpt_asked[k], self.ckpt_done[k], self.managed[k] = self.now, False, True
        elif action.verb == "suspend" and self.state[k] in (RUNNING, RESUMING):
            j = self.site.jobs[k]
            periodic = (int(self.progress[k]) // j.checkpoint_interval_s) * j.checkpoint_interval_s
            keep = max(periodic, int(self.saved[k]) if self.ckpt_done[k] else j.done_s)
            keep = min(keep, int(self.progress[k]))
            self.acct.lost_gpu_s += float((self.progress[k] - keep) * j.nodes * self.site.gpus_per_node)
            self.progress[k] = keep
            self.state[k], self.managed[k] = SUSPENDED, True
            self.ckpt_asked[k], self.ckpt_done[k] = -1, False
            self.acct.suspensions += 1
        elif action.verb == "resume":
            if self.state[k] == SUSPENDED:
                self.state[k] = RESUMING
                self.resume_at[k] = self.now + self.site.jobs[k].restore_s
            self.ckpt_asked[k], self.ckpt_done[k], self.managed[k] = -1, False, False
        return True

    def _apply_service(self, k: int, action: Action) -> None:
        svc = self.site.services[k]
        if action.replicas is None:
            return
        target = max(svc.floor, min(svc.replicas, action.replicas))
        if action.verb == "scaleDown" and self.svc_original[k] is None:
            self.svc_original[k] = self.replicas[k]
        delay = svc.drain_s if target < self.replicas[k] else svc.startup_s
        self.replicas[k] = target
        self.changes[k] = [c for c in self.changes[k] if c[0] < self.now + delay] + [(self.now + delay, target)]
        self.svc_last_action[k] = self.now
        original = self.svc_original[k]
        if action.verb == "scaleUp" and original is not None and target >= original:
            self.svc_original[k] = None

def utilisation_profile(seconds: int, *, start_hour: float, peak_hour: float = 15.0, base: float = 0.6,
                        amplitude: float = 0.3, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Diurnal utilisation of an inference service (0..1 per second): a daily sine peaking at
    ``peak_hour`` plus minute-scale AR(1) noise. Synthetic: no public per-second inference power
    trace ships with the data, so the services' shape is parametric and the scenario says so."""
    rng = np.random.default_rng(seed)
    hours = start_hour + np.arange(seconds) / 3600.0
    daily = base + amplitude * np.cos(2 * math.pi * (hours - peak_hour) / 24.0)
    minutes = seconds // 60 + 2
    ar = np.empty(minutes)
    ar[0] = 0.0
    shocks = rng.normal(0.0, noise, minutes)
    for m in range(1, minutes):
        ar[m] = 0.8 * ar[m - 1] + shocks[m]
    wiggle = np.interp(np.arange(seconds) / 60.0, np.arange(minutes), ar)
    return np.clip(daily + wiggle, 0.05, 1.0)
