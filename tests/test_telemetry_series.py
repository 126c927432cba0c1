"""Series hygiene and trace loaders: gaps are never zeros, bad files say where they are bad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.telemetry.series import resample
from gridshift.telemetry.traces import (
    TraceError,
    load_gpu_series,
    load_node_csv,
    load_nvidia_smi_csv,
    load_power_trace,
    load_series,
    parse_prometheus_range,
)
from tests.conftest import SHARED_DATA

H100 = SHARED_DATA / "gpu-power" / "h100-8gpu-llm-training"
needs_data = pytest.mark.skipif(not H100.is_dir(), reason=f"shared traces not found at {H100}")


def test_bins_average_samples():
    segs = resample(np.array([0.0, 0.5, 1.0, 1.5]), np.array([1.0, 3.0, 10.0, 20.0]), step=1.0)
    assert len(segs) == 1
    assert segs[0].values.tolist() == [2.0, 15.0]


def test_short_gap_is_interpolated_not_zero():
    t = np.array([0.0, 1.0, 2.0, 5.0, 6.0])
    v = np.array([100.0, 100.0, 100.0, 400.0, 400.0])
    (seg,) = resample(t, v, step=1.0, max_gap_s=3.0)
    assert seg.values.tolist() == [100.0, 100.0, 100.0, 200.0, 300.0, 400.0, 400.0]
    assert seg.filled.tolist() == [False, False, False, True, True, False, False]


def test_long_gap_splits_the_series():
    t = np.array([0.0, 1.0, 2.0, 20.0, 21.0, 22.0])
    segs = resample(t, np.full(6, 500.0), step=1.0, max_gap_s=5.0)
    assert [len(s) for s in segs] == [3, 3]
    assert segs[1].start == 20.0
    assert all(np.all(s.values == 500.0) for s in segs)


def test_nan_samples_are_missing_not_zero():
    t = np.arange(6, dtype=float)
    v = np.array([300.0, np.nan, np.nan, np.nan, np.nan, 300.0])
    # A 4-bin hole longer than max_gap splits; one-sample pieces fall below min_length.
    assert resample(t, v, step=1.0, max_gap_s=2.0) == []
    (seg,) = resample(t, v, step=1.0, max_gap_s=5.0)
    assert np.all(seg.values == 300.0) and seg.filled.sum() == 4


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 5000)), min_size=1, max_size=200),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.floats(0, 10),
)
def test_resampled_values_stay_within_the_samples(samples, step, max_gap):
    t = np.array([s[0] for s in samples])
    v = np.array([s[1] for s in samples])
    for seg in resample(t, v, step=step, max_gap_s=max_gap, min_length=1):
        assert np.all(np.isfinite(seg.values))
        assert seg.values.min() >= v.min() - 1e-6 and seg.values.max() <= v.max() + 1e-6


def test_nvidia_smi_incomplete_tick_is_dropped(tmp_path: Path):
    rows = ["timestamp, power.draw [W], utilization.gpu [%], memory.used [MiB]"]
    for tick in range(4):
        gpus = 1 if tick == 2 else 2  # tick 2 lost a row
        for g in range(gpus):
            rows.append(f"2025/07/26 23:32:0{tick}.{g:03d}, {100 + g:.2f} W, 50 %, 10 MiB")
    path = tmp_path / "smi.csv"
    path.write_text("\n".join(rows) + "\n")
    trace = load_nvidia_smi_csv(path)
    assert trace.gpus == 2
    assert len(trace.times) == 3
    assert trace.node().values.tolist() == [201.0, 201.0, 201.0]


def test_per_gpu_series_come_only_from_nvidia_smi_logs(tmp_path: Path):
    rows = ["timestamp, power.draw [W], utilization.gpu [%], memory.used [MiB]"]
    for tick in range(5):
        rows += [f"2025/07/26 23:32:0{tick}.000, 100.00 W, 50 %, 10 MiB",
                 f"2025/07/26 23:32:0{tick}.002, 300.00 W, 50 %, 10 MiB"]
    smi = tmp_path / "smi.csv"
    smi.write_text("\n".join(rows) + "\n")
    node = tmp_path / "node.csv"
    node.write_text("datetime,power_watts\n2025-07-27 00:34:45,577\n2025-07-27 00:34:46,578\n")
    per_gpu = load_gpu_series([smi, node], step=1.0)
    assert [s.values.tolist() for s in per_gpu] == [[100.0] * 5, [300.0] * 5]
    assert per_gpu[1].name.endswith("[gpu1]")
    assert load_series([smi], step=1.0)[0].values.tolist() == [400.0] * 5


def test_bad_value_names_file_and_line(tmp_path: Path):
    path = tmp_path / "node.csv"
    path.write_text("datetime,power_watts\n2025-07-27 00:34:45.155,577.1\n2025-07-27 00:34:45.285,lots\n")
    with pytest.raises(TraceError, match=r"node\.csv:3: cannot read power 'lots'"):
        load_node_csv(path)


@pytest.mark.parametrize("stamp, seconds", [
    ("2025-07-27 00:34:45.155", 45.155), ("2025/07/27 00:34:45", 45.0), ("2025-07-27T00:34:45.5Z", 45.5),
    ("2025-07-27T02:34:45+02:00", 45.0), ("1753576485.25", 45.25),
])
def test_every_time_format_reads_as_utc(tmp_path: Path, stamp: str, seconds: float):
    path = tmp_path / "node.csv"
    path.write_text(f"datetime,power_watts\n{stamp},577\n")
    assert load_node_csv(path).times[0] == pytest.approx(1753576440.0 + seconds, abs=1e-6)


@pytest.mark.parametrize("stamp", ["2025-13-27 00:34:45", "2025-07-27 25:34:45", "yesterday at noon"])
def test_impossible_time_names_file_and_line(tmp_path: Path, stamp: str):
    path = tmp_path / "node.csv"
    path.write_text(f"datetime,power_watts\n2025-07-27 00:34:44,577\n{stamp},578\n")
    with pytest.raises(TraceError, match=rf"node\.csv:3: cannot read time '{stamp}'"):
        load_node_csv(path)


def test_unknown_columns_are_named(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_text("when,how_much\n1,2\n")
    with pytest.raises(TraceError, match="need a time column"):
        load_power_trace(path)


def test_prometheus_range_nan_is_missing(tmp_path: Path):
    doc = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "DCGM_FI_DEV_POWER_USAGE", "gpu": "0"},
         "values": [[100, "300"], [101, "NaN"], [102, "300"], [103, "310"]]}]}}
    (samples,) = parse_prometheus_range(doc)
    assert np.isnan(samples.values[1])
    path = tmp_path / "q.json"
    path.write_text(json.dumps(doc))
    (seg,) = load_series([path], step=1.0, max_gap_s=2.0)
    assert seg.values.tolist() == [300.0, 300.0, 300.0, 310.0]
    assert seg.filled.tolist() == [False, True, False, False]


def test_prometheus_error_status_is_reported():
    with pytest.raises(TraceError, match="status is 'error'"):
        parse_prometheus_range({"status": "error", "error": "bad query"})


@needs_data
def test_h100_per_gpu_log_sums_to_the_node_log():
    """The per-GPU nvidia-smi log, summed per tick, matches the node-total file of the same run."""
    trace = load_nvidia_smi_csv(H100 / "run-2025-07-27T00-34-per-gpu.csv")
    assert trace.gpus == 8
    per_gpu = trace.node().resample(1.0, 5.0)[0]
    node = load_node_csv(H100 / "run-2025-07-27T00-34-node.csv").resample(1.0, 5.0)[0]
    offset = round(node.start - per_gpu.start)
    n = min(len(per_gpu) - max(offset, 0), len(node))
    a = per_gpu.values[max(offset, 0): max(offset, 0) + n]
    b = node.values[:n]
    assert np.mean(np.abs(a - b)) / np.mean(b) < 0.02
    assert 1000 < b.mean() < 5000


@needs_data
def test_h100_logging_gaps_never_read_as_zero():
    """Run 23-53 has logging stalls of up to 9 s: they split or bridge, never dip to 0 W."""
    segs = load_series([H100 / "run-2025-07-26T23-53-per-gpu.csv"], step=1.0, max_gap_s=5.0)
    assert len(segs) >= 2
    assert min(s.values.min() for s in segs) > 400  # an idle 8-GPU node draws ~570 W
