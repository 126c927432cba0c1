"""Synthetic training-job power: node-power series (watts at 1 s) for jobs no model has seen.

Pure numpy, no I/O. The series have the shape of the shared H100 traces (one node of 8 H100s
training a GPT, ``../shared/data/gpu-power/h100-8gpu-llm-training``): the node idles at about
0.6 kW, loads the job at about 1 kW for a minute or two, ramps to about 4.4 kW within seconds and
trains there, rippling, and drops to about 1.2 kW for 15 to 20 s at every checkpoint or evaluation
(every 40 to 250 s in those runs).

A series is a sequence of *runs* separated by idle *gaps*. A run loads (``warmup`` at
``warmup_level``), ramps up (``ramp_up``), trains for ``run`` seconds and ramps down to idle
(``ramp_down``). While it trains, the power ripples with the iteration period, dips to
``checkpoint_level`` for ``checkpoint`` seconds every ``checkpoint_interval`` and to
``evaluation_level`` for ``evaluation`` seconds every ``evaluation_interval``, and stalls now and
then (a data loader or a network hiccup: a Poisson process of ``stalls_per_hour``) to
``stall_level``. Measurement noise is proportional to the power above idle, as in the real traces
(about 80 W on the 4.4 kW plateau, 10 W in the dips).

Levels are fractions of the way from the node's idle power (0) to its compute power (1): the real
traces' checkpoint level, 1.2 kW on a node idling at 0.6 kW and training at 4.4 kW, is 0.17. Watts
are per GPU and scale with the GPUs per node.

:class:`SyntheticJobs` holds the ranges. Every series is one job: it draws each parameter once,
uniformly from its range (:func:`draw`, a :class:`JobPower`), and then every occurrence of a gap,
warm-up, ramp, run, interval or dip varies by ``jitter`` around the job's value; a stall lasts an
exponentially distributed time around the job's mean. :func:`generate` is deterministic given its
generator or seed, and series ``k`` does not depend on how many are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

Range = tuple[float, float]

_FRACTIONS = ("ripple", "checkpoint_level", "evaluation_level", "stall_level", "warmup_level")
_MAY_BE_ZERO = ("ripple", "checkpoint_level", "evaluation_level", "stall_level", "warmup_level", "stalls_per_hour",
                "warmup", "ramp_up", "ramp_down", "gap", "noise", "idle_watts_per_gpu", "jitter")
_MAX_NOISE = 1 / 3  # noise is clipped at three standard deviations: at most this, the power never falls below idle


@dataclass(frozen=True)
class SyntheticJobs:
    """Ranges ``(low, high)`` that each synthetic job draws its parameters from, uniformly. The
    defaults look like the shared H100 traces, with more variety than those five runs have."""

    idle_watts_per_gpu: Range = (65.0, 80.0)
    """What a GPU draws with no job: the real 8-GPU node idles at 575 W."""
    compute_watts_per_gpu: Range = (375.0, 600.0)
    """The mean while training (3 to 4.8 kW for an 8-GPU node; the real runs train at 4.4 kW)."""
    iteration: Range = (0.5, 5.0)
    """The training step's period in seconds; the power ripples with it."""
    ripple: Range = (0.0, 0.1)
    """The ripple's swing peak to peak over one step, a fraction of compute minus idle. A 1 s sample
    averages it: a step that divides a second (0.5 s, 1 s) leaves none, a 5 s step most of it."""
    checkpoint_interval: Range = (60.0, 300.0)
    """Seconds from one checkpoint to the next."""
    checkpoint: Range = (10.0, 40.0)
    """How long a checkpoint dip lasts (the real ones: 15 to 20 s)."""
    checkpoint_level: Range = (0.1, 0.3)
    """The level during a checkpoint (the real ones: 0.17)."""
    evaluation_interval: Range = (300.0, 1800.0)
    """Seconds from one evaluation to the next."""
    evaluation: Range = (10.0, 120.0)
    """How long an evaluation lasts."""
    evaluation_level: Range = (0.3, 0.6)
    """The level during an evaluation: forward passes only, between a checkpoint and training."""
    stalls_per_hour: Range = (0.0, 6.0)
    """The rate of stalls while training (Poisson)."""
    stall: Range = (5.0, 60.0)
    """A stall's mean duration (each one is exponentially distributed, at least 1 s)."""
    stall_level: Range = (0.0, 0.05)
    """The level during a stall: near idle."""
    warmup: Range = (20.0, 120.0)
    """Seconds a run spends loading (data, weights, compilation) before it trains (real: about 100)."""
    warmup_level: Range = (0.05, 0.15)
    """The level while loading (real: 0.1)."""
    ramp_up: Range = (3.0, 30.0)
    """Seconds from the warm-up level to compute power."""
    ramp_down: Range = (2.0, 10.0)
    """Seconds from compute power to idle when a run ends."""
    run: Range = (1200.0, 4 * 3600.0)
    """How long a run trains, from the end of its ramp up to the start of its ramp down."""
    gap: Range = (10.0, 300.0)
    """Seconds idle before each run (a restart, a queue)."""
    noise: Range = (0.01, 0.03)
    """Measurement noise: its standard deviation as a fraction of the power above idle."""
    jitter: float = 0.1
    """How much each occurrence varies around the job's value, as a fraction (uniform, +-)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            pair = value if isinstance(value, tuple) else (value, value)
            if len(pair) != 2 or pair[0] > pair[1]:
                raise ValueError(f"{f.name}: expected (low, high) with low <= high, got {value}")
            if pair[0] < 0 or (pair[0] == 0 and f.name not in _MAY_BE_ZERO):
                raise ValueError(f"{f.name}: must be {'non-negative' if f.name in _MAY_BE_ZERO else 'positive'}, "
                                 f"got {value}")
            if f.name in _FRACTIONS and pair[1] > 1:
                raise ValueError(f"{f.name}: a fraction of compute minus idle, at most 1, got {value}")
        if self.noise[1] > _MAX_NOISE:
            raise ValueError(f"noise: at most {_MAX_NOISE:.3f}, got {self.noise}")
        if self.jitter >= 1:
            raise ValueError(f"jitter: below 1, got {self.jitter}")
        if self.compute_watts_per_gpu[0] <= self.idle_watts_per_gpu[1]:
            raise ValueError(f"compute_watts_per_gpu: low {self.compute_watts_per_gpu[0]:g} is not above "
                             f"idle_watts_per_gpu high {self.idle_watts_per_gpu[1]:g}")

    def watts_range(self, gpus_per_node: int = 8) -> Range:
        """The lowest and highest watts a node's series can take."""
        idle_w = self.idle_watts_per_gpu[0] * gpus_per_node
        span_w = (self.compute_watts_per_gpu[1] - self.idle_watts_per_gpu[0]) * gpus_per_node
        return idle_w, idle_w + span_w * (1 + self.ripple[1] / 2) * (1 + 3 * self.noise[1])


@dataclass(frozen=True)
class JobPower:
    """One synthetic job's parameters, drawn from a :class:`SyntheticJobs`: watts per node,
    durations in seconds, levels as fractions of compute minus idle."""

    idle_w: float
    compute_w: float
    iteration_s: float
    ripple: float
    checkpoint_interval_s: float
    checkpoint_s: float
    checkpoint_level: float
    evaluation_interval_s: float
    evaluation_s: float
    evaluation_level: float
    stalls_per_hour: float
    stall_s: float
    stall_level: float
    warmup_s: float
    warmup_level: float
    ramp_up_s: float
    ramp_down_s: float
    run_s: float
    gap_s: float
    noise: float
    jitter: float


def draw(spec: SyntheticJobs, rng: np.random.Generator, gpus_per_node: int = 8) -> JobPower:
    """One job's parameters, each uniform in its range."""
    def u(pair: Range) -> float:
        return float(rng.uniform(pair[0], pair[1]))

    return JobPower(idle_w=u(spec.idle_watts_per_gpu) * gpus_per_node,
                    compute_w=u(spec.compute_watts_per_gpu) * gpus_per_node,
                    iteration_s=u(spec.iteration), ripple=u(spec.ripple),
                    checkpoint_interval_s=u(spec.checkpoint_interval), checkpoint_s=u(spec.checkpoint),
                    checkpoint_level=u(spec.checkpoint_level),
                    evaluation_interval_s=u(spec.evaluation_interval), evaluation_s=u(spec.evaluation),
                    evaluation_level=u(spec.evaluation_level), stalls_per_hour=u(spec.stalls_per_hour),
                    stall_s=u(spec.stall), stall_level=u(spec.stall_level), warmup_s=u(spec.warmup),
                    warmup_level=u(spec.warmup_level), ramp_up_s=u(spec.ramp_up), ramp_down_s=u(spec.ramp_down),
                    run_s=u(spec.run), gap_s=u(spec.gap), noise=u(spec.noise), jitter=spec.jitter)


def series(job: JobPower, seconds: int, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of one job's node power in watts, at 1 s."""
    level, training = _levels(job, seconds, rng)
    # A step between levels falls inside a second: the 1 s mean shows one sample half way.
    level = np.concatenate([level[:1], (level[1:] + level[:-1]) / 2])
    t = np.arange(seconds, dtype=float)
    ripple = np.where(training, job.ripple / 2 * _second_means_of_cosine(t, job.iteration_s, rng), 0.0)
    above_idle_w = (job.compute_w - job.idle_w) * level * (1 + ripple)
    noise = job.noise * np.clip(rng.standard_normal(seconds), -3, 3)
    return job.idle_w + above_idle_w * (1 + noise)


def generate(spec: SyntheticJobs, count: int, seconds: int, rng: np.random.Generator | int,
             gpus_per_node: int = 8) -> list[np.ndarray]:
    """``count`` jobs' node-power series of ``seconds`` each, at 1 s. Deterministic given ``rng``
    (a generator or a seed); series ``k`` is the same whatever ``count``."""
    if count < 0 or seconds <= 0:
        raise ValueError(f"count must be non-negative and seconds positive, got {count} and {seconds}")
    streams = (rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)).spawn(count)
    return [series(draw(spec, r, gpus_per_node), seconds, r) for r in streams]


def _levels(job: JobPower, seconds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every second's level (0 idle, 1 compute) and whether the job trains (and ripples) then."""
    level = np.zeros(seconds)
    training = np.zeros(seconds, dtype=bool)

    def vary(value: float, least: int = 1) -> int:
        return max(least, round(value * rng.uniform(1 - job.jitter, 1 + job.jitter)))

    t = 0
    while t < seconds:
        t += vary(job.gap_s, least=0)
        warmup = vary(job.warmup_s, least=0)
        _put(level, t, np.full(warmup, job.warmup_level))
        t += warmup
        ramp_up = vary(job.ramp_up_s, least=0)
        _put(level, t, np.linspace(job.warmup_level, 1.0, ramp_up + 2)[1:-1])
        t += ramp_up
        if t >= seconds:
            break
        end = min(t + vary(job.run_s), seconds)
        level[t:end] = 1.0
        training[t:end] = True
        for start, stop, dip_level in _dips(job, t, end, vary, rng):
            level[start:stop] = dip_level
            training[start:stop] = False
        t = end
        ramp_down = vary(job.ramp_down_s, least=0)
        _put(level, t, np.linspace(1.0, 0.0, ramp_down + 2)[1:-1])
        t += ramp_down
    return level, training


def _dips(job: JobPower, start: int, end: int, vary: Callable[..., int],
          rng: np.random.Generator) -> list[tuple[int, int, float]]:
    """The evaluations, checkpoints and stalls of a run that trains from ``start`` to ``end``, as
    ``(from, to, level)``; a later one overrides an earlier one where they overlap."""
    dips = [(a, b, job.evaluation_level)
            for a, b in _periodic(start, end, job.evaluation_interval_s, job.evaluation_s, vary)]
    dips += [(a, b, job.checkpoint_level)
             for a, b in _periodic(start, end, job.checkpoint_interval_s, job.checkpoint_s, vary)]
    stalls = int(rng.poisson(job.stalls_per_hour * (end - start) / 3600))
    for at in np.sort(rng.integers(start, end, stalls)):
        dips.append((int(at), min(end, int(at) + max(1, round(rng.exponential(job.stall_s)))), job.stall_level))
    return dips


def _periodic(start: int, end: int, interval_s: float, duration_s: float,
              vary: Callable[..., int]) -> list[tuple[int, int]]:
    """Spans of about ``duration_s`` every about ``interval_s`` (start to start) after ``start``,
    the first one interval in, cut at ``end``."""
    spans = []
    at = start + vary(interval_s)
    while at < end:
        spans.append((at, min(end, at + vary(duration_s))))
        at += vary(interval_s)
    return spans


def _second_means_of_cosine(t: np.ndarray, period_s: float, rng: np.random.Generator) -> np.ndarray:
    """The mean of a unit cosine of ``period_s`` (random phase) over each second ``[t, t + 1)``."""
    w = 2 * math.pi / period_s
    phase = rng.uniform(0, 2 * math.pi)
    return (np.sin(w * (t + 1) + phase) - np.sin(w * t + phase)) / w


def _put(out: np.ndarray, at: int, values: np.ndarray) -> None:
    """``values`` into ``out`` from ``at``, as far as ``out`` reaches."""
    n = min(len(values), len(out) - at)
    if n > 0:
        out[at:at + n] = values[:n]
