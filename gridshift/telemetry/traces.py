"""Loaders for recorded power traces: raw ``nvidia-smi --format=csv`` logs, node-total CSVs,
generic ``timestamp,value`` CSVs and Prometheus ``query_range`` JSON. Each returns raw
samples (times in Unix seconds, watts); :func:`gridshift.telemetry.series.resample` makes them
evenly spaced. A malformed file raises :class:`TraceError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridshift.telemetry.series import Series, resample


class TraceError(ValueError):
    """A trace file could not be read."""


@dataclass(frozen=True)
class Samples:
    """Raw samples of one signal: times (Unix seconds) and values (watts)."""

    times: np.ndarray
    values: np.ndarray
    name: str = ""

    def resample(self, step: float = 1.0, max_gap_s: float = 5.0, min_length: int = 2) -> list[Series]:
        return resample(self.times, self.values, step=step, max_gap_s=max_gap_s, min_length=min_length,
                        name=self.name)


@dataclass(frozen=True)
class GpuTrace:
    """An nvidia-smi log: one row per tick, one column per GPU."""

    times: np.ndarray
    per_gpu: np.ndarray  # [ticks, gpus] watts
    name: str = ""

    @property
    def gpus(self) -> int:
        return int(self.per_gpu.shape[1])

    def node(self) -> Samples:
        """Node total: the sum over GPUs of each complete tick."""
        return Samples(self.times, self.per_gpu.sum(axis=1), self.name)

    def gpu(self, index: int) -> Samples:
        return Samples(self.times, self.per_gpu[:, index], f"{self.name}[gpu{index}]")


# nvidia-smi's "2025/07/26 23:32:09.703" and the same with dashes or a T, read as UTC. Parsed by
# hand: with strptime, loading the five H100 runs took twice as long (5.5 s against 2.6 s here).
_WALL_CLOCK = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?")


def _parse_time(text: str, where: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _WALL_CLOCK.fullmatch(text)
    if match is not None:
        y, mo, d, h, mi, sec, frac = match.groups()
        try:
            base = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), tzinfo=_dt.UTC).timestamp()
        except ValueError:
            raise TraceError(f"{where}: cannot read time {text!r}") from None
        return base + (float("0." + frac) if frac else 0.0)
    try:
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TraceError(f"{where}: cannot read time {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.UTC)
    return parsed.timestamp()


def _parse_watts(text: str, where: str) -> float:
    text = text.strip()
    if text.endswith("W"):
        text = text[:-1].strip()
    if text in ("[N/A]", "N/A", "[Not Supported]", "", "NaN", "nan"):
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise TraceError(f"{where}: cannot read power {text!r}") from None


def load_nvidia_smi_csv(path: str | Path, tick_gap_s: float = 0.05) -> GpuTrace:
    """Read ``nvidia-smi --query-gpu=timestamp,power.draw,... --format=csv`` with several GPUs.

    nvidia-smi writes one row per GPU per tick, in index order, with no GPU column; the rows of
    one tick are a few milliseconds apart. Rows closer than ``tick_gap_s`` form a tick. The GPU
    count is the most common tick size; a tick with another size is incomplete and is dropped
    (a partial sum would read as a power dip).
    """
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TraceError(f"{path}: empty file") from None
        if not header or header[0] != "timestamp" or not any(h.startswith("power.draw") for h in header):
            raise TraceError(f"{path}: not an nvidia-smi CSV (header {header[:3]})")
        col = next(i for i, h in enumerate(header) if h.startswith("power.draw"))
        times, watts = [], []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path}:{lineno}"
            if len(row) <= col:
                raise TraceError(f"{where}: expected {len(header)} columns, got {len(row)}")
            times.append(_parse_time(row[0], where))
            watts.append(_parse_watts(row[col], where))
    if not times:
        raise TraceError(f"{path}: no samples")
    t = np.asarray(times)
    w = np.asarray(watts)
    boundaries = np.flatnonzero(np.diff(t) > tick_gap_s) + 1
    starts = np.concatenate([[0], boundaries])
    sizes = np.diff(np.concatenate([starts, [len(t)]]))
    gpus = int(np.bincount(sizes).argmax())
    complete = starts[sizes == gpus]
    per_gpu = np.stack([w[s:s + gpus] for s in complete]) if len(complete) else np.zeros((0, gpus))
    return GpuTrace(times=t[complete], per_gpu=per_gpu, name=path.stem)


def load_node_csv(path: str | Path) -> Samples:
    """Read a node-total CSV ``datetime,power_watts[,time_seconds]``."""
    return _load_two_columns(path, time_columns=("datetime", "timestamp", "time"),
                             value_columns=("power_watts", "watts", "value", "power"))


def load_value_csv(path: str | Path) -> Samples:
    """Read a generic ``timestamp,value`` CSV (Unix seconds or ISO 8601 times)."""
    return _load_two_columns(path, time_columns=("timestamp", "time", "datetime"),
                             value_columns=("value", "watts", "power_watts", "power"))


def _load_two_columns(path: str | Path, time_columns: tuple[str, ...], value_columns: tuple[str, ...]) -> Samples:
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise TraceError(f"{path}: empty file") from None
        tcol = next((header.index(c) for c in time_columns if c in header), None)
        vcol = next((header.index(c) for c in value_columns if c in header), None)
        if tcol is None or vcol is None:
            raise TraceError(
                f"{path}: need a time column ({'/'.join(time_columns)}) and a value column "
                f"({'/'.join(value_columns)}); header is {header}"
            )
        times, values = [], []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path}:{lineno}"
            if len(row) <= max(tcol, vcol):
                raise TraceError(f"{where}: expected {len(header)} columns, got {len(row)}")
            times.append(_parse_time(row[tcol], where))
            values.append(_parse_watts(row[vcol], where))
    if not times:
        raise TraceError(f"{path}: no samples")
    return Samples(np.asarray(times), np.asarray(values), path.stem)


def parse_prometheus_range(doc: dict[str, Any], source: str = "query_range") -> list[Samples]:
    """Series of a Prometheus ``/api/v1/query_range`` response (``resultType: matrix``).

    Values such as ``"NaN"`` or ``"+Inf"`` become NaN, so resampling treats them as missing.
    """
    if doc.get("status") != "success":
        raise TraceError(f"{source}: Prometheus status is {doc.get('status')!r}: {doc.get('error', '')}")
    data = doc.get("data") or {}
    if data.get("resultType") != "matrix":
        raise TraceError(f"{source}: expected resultType 'matrix', got {data.get('resultType')!r}")
    out = []
    for item in data.get("result", []):
        metric = item.get("metric", {})
        name = metric.get("__name__", "") + "{" + ",".join(
            f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__") + "}"
        pairs = item.get("values", [])
        times = np.array([float(p[0]) for p in pairs], dtype=np.float64)
        values = np.array([float(p[1]) for p in pairs], dtype=np.float64)
        values[~np.isfinite(values)] = np.nan
        out.append(Samples(times, values, name))
    return out


def load_prometheus_json(path: str | Path) -> list[Samples]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}: not JSON ({exc})") from None
    return parse_prometheus_range(doc, str(path))


def _first_line(path: Path) -> str:
    with path.open(errors="replace") as fh:
        return fh.readline().strip().lower()


def _is_nvidia_smi(head: str) -> bool:
    """Whether a (lower-cased) header line is nvidia-smi's ``--format=csv`` header."""
    return head.startswith("timestamp") and "power.draw" in head


def load_power_trace(path: str | Path) -> Samples:
    """Load any supported trace file as one node-total power signal (format from its content)."""
    path = Path(path)
    if path.is_dir():
        raise TraceError(f"{path}: a directory, not a trace file")
    if not path.is_file():
        raise TraceError(f"{path}: no such file")
    try:
        return _load_power_trace(path)
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text file (CSV or Prometheus JSON expected)") from None


TRACE_SUFFIXES = (".csv", ".json")


def trace_files(paths: list[str | Path]) -> list[Path]:
    """``paths`` with each directory replaced by the trace files in it (``TRACE_SUFFIXES``, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TRACE_SUFFIXES)
            if not found:
                raise TraceError(f"{p}: a directory with no trace files ({', '.join(TRACE_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(p)
    return out


def _load_power_trace(path: Path) -> Samples:
    head = _first_line(path)
    if head.startswith("{"):
        series = load_prometheus_json(path)
        if not series:
            raise TraceError(f"{path}: the query returned no series")
        times = np.concatenate([s.times for s in series])
        values = np.concatenate([s.values for s in series])
        if len(series) > 1:  # sum the series per timestamp, as sum() would in PromQL
            uniq, inv = np.unique(times, return_inverse=True)
            total = np.zeros(len(uniq))
            np.add.at(total, inv, values)
            return Samples(uniq, total, path.stem)
        return Samples(times, values, path.stem)
    if _is_nvidia_smi(head):
        return load_nvidia_smi_csv(path).node()
    if head.startswith("datetime") or "power_watts" in head:
        return load_node_csv(path)
    return load_value_csv(path)


def load_series(paths: list[str | Path], step: float = 1.0, max_gap_s: float = 5.0,
                min_length: int = 2) -> list[Series]:
    """Every gap-free segment of at least ``min_length`` samples of every file's node-total power,
    resampled to ``step`` (a directory stands for the trace files in it)."""
    return load_series_reporting(paths, step, max_gap_s, min_length)[0]


def load_series_reporting(paths: list[str | Path], step: float = 1.0, max_gap_s: float = 5.0,
                          min_length: int = 2, skip_bad_files: bool = False,
                          needed_for: str = "a series") -> tuple[list[Series], list[str]]:
    """:func:`load_series`, and why each file that gave nothing was skipped: a file with no segment
    of ``min_length`` samples is named with its longest (and what ``needed_for`` them); an
    unreadable one raises its :class:`TraceError`, or with ``skip_bad_files`` is skipped with that
    error's text."""
    out: list[Series] = []
    skipped: list[str] = []
    for path in trace_files(paths):
        try:
            segments = load_power_trace(path).resample(step, max_gap_s, 2)
        except TraceError as exc:
            if not skip_bad_files:
                raise
            skipped.append(str(exc))
            continue
        usable = [seg for seg in segments if len(seg.values) >= min_length]
        if not usable:
            longest = max((len(seg.values) for seg in segments), default=0)
            skipped.append(f"{path}: its longest gap-free stretch is {longest} samples at {step:g} s; "
                           f"{needed_for} needs {min_length}")
        out.extend(usable)
    return out, skipped


def load_gpu_series(paths: list[str | Path], step: float = 1.0, max_gap_s: float = 5.0,
                    min_length: int = 2) -> list[Series]:
    """Each GPU's own series from the nvidia-smi logs among ``paths`` (other files are skipped)."""
    out: list[Series] = []
    for path in trace_files(paths):
        if _is_nvidia_smi(_first_line(path)):
            trace = load_nvidia_smi_csv(path)
            for g in range(trace.gpus):
                out.extend(trace.gpu(g).resample(step, max_gap_s, min_length))
    return out
