"""Series hygiene: irregular samples in, evenly spaced gap-free segments out.

The one rule: missing data is never read as zero. Samples are averaged into bins of ``step``
seconds; a bin without a (finite) sample is missing; a run of missing bins no longer than
``max_gap_s`` is bridged by linear interpolation between its neighbours, and a longer one
splits the series into separate segments. Pure numpy, no I/O: the trace loaders, the
forecaster's training and the operator's live Prometheus reads all go through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Series:
    """Evenly spaced samples: ``values[i]`` is the mean over ``[start + i*step, start + (i+1)*step)``."""

    start: float
    step: float
    values: np.ndarray
    name: str = ""
    filled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Per value, True where the value was interpolated across a short gap (empty: none)."""

    def __len__(self) -> int:
        return len(self.values)

    def times(self) -> np.ndarray:
        return self.start + self.step * np.arange(len(self.values))

    @property
    def duration_s(self) -> float:
        return len(self.values) * self.step


def resample(
    times: np.ndarray,
    values: np.ndarray,
    step: float = 1.0,
    max_gap_s: float = 5.0,
    min_length: int = 2,
    name: str = "",
) -> list[Series]:
    """Bin-average ``values`` sampled at ``times`` (seconds) onto a ``step`` grid.

    Returns the contiguous segments, each at least ``min_length`` bins long. Non-finite
    samples count as missing. Gaps of at most ``max_gap_s`` are interpolated (and marked in
    ``Series.filled``); longer gaps split the series.
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if max_gap_s < 0:
        raise ValueError(f"max_gap_s must not be negative, got {max_gap_s}")
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"times and values must be 1-D of equal length, got {t.shape} and {v.shape}")
    ok = np.isfinite(t) & np.isfinite(v)
    t, v = t[ok], v[ok]
    if len(t) == 0:
        return []
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    start = np.floor(t[0] / step) * step
    idx = np.floor((t - start) / step + 1e-9).astype(np.int64)
    n = int(idx[-1]) + 1
    counts = np.bincount(idx, minlength=n)
    sums = np.bincount(idx, weights=v, minlength=n)
    present = counts > 0
    binned = np.full(n, np.nan)
    binned[present] = sums[present] / counts[present]

    max_gap_bins = int(np.floor(max_gap_s / step + 1e-9))
    segments: list[Series] = []
    seg_start = 0
    i = 0
    filled = np.zeros(n, dtype=bool)
    while i < n:
        if present[i]:
            i += 1
            continue
        j = i
        while j < n and not present[j]:
            j += 1
        gap = j - i
        if gap <= max_gap_bins and i > 0 and j < n:
            left, right = binned[i - 1], binned[j]
            frac = np.arange(1, gap + 1) / (gap + 1)
            binned[i:j] = left + (right - left) * frac
            filled[i:j] = True
        else:
            if i - seg_start >= min_length:
                segments.append(_segment(start, step, binned, filled, seg_start, i, name))
            seg_start = j
        i = j
    if n - seg_start >= min_length:
        segments.append(_segment(start, step, binned, filled, seg_start, n, name))
    return segments


def _segment(start: float, step: float, binned: np.ndarray, filled: np.ndarray, a: int, b: int, name: str) -> Series:
    return Series(start=start + a * step, step=step, values=binned[a:b].copy(), name=name, filled=filled[a:b].copy())


def longest(segments: list[Series]) -> Series:
    if not segments:
        raise ValueError("no data left after resampling")
    return max(segments, key=len)
