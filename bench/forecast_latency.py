"""Latency of the forecaster runtime (onnxruntime, CPU) as the operator uses it.

    python bench/forecast_latency.py [--model default] [--json out/forecast_latency.json]

Prints, for each student network in the model directory (student, and student_int8 /
student_pruned when present): the median and 99th-percentile latency of a single-window
forecast (one control period of one policy) over --single calls, and the median time of one
call forecasting --batch windows at once, over --repeats calls. One intra-op thread, as the
operator runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_json

from gridshift.forecaster.runtime import Forecaster


def timed(call: Callable[[], object], count: int) -> np.ndarray:
    """Wall seconds of each of ``count`` calls."""
    out = np.empty(count)
    for i in range(count):
        t0 = time.perf_counter()
        call()
        out[i] = time.perf_counter() - t0
    return out


def measure(model: Forecaster, name: str, one: np.ndarray, many: np.ndarray, args: argparse.Namespace) -> dict:
    net = model.network(name)
    timed(lambda: net.run(one), 500)  # warm-up
    times = timed(lambda: net.run(one), args.single)
    # Through the public API too (input checks included), which is what the operator calls.
    api = timed(lambda: model.predict(one, network=name), 2000)
    net.run(many)
    batch = timed(lambda: net.run(many), args.repeats)
    return {
        "single_median_us": float(np.median(times) * 1e6),
        "single_p99_us": float(np.percentile(times, 99) * 1e6),
        "single_via_predict_median_us": float(np.median(api) * 1e6),
        "batch_windows": args.batch,
        "batch_median_ms": float(np.median(batch) * 1e3),
        "file_bytes": (model.directory / model.meta.files[name]["path"]).stat().st_size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--single", type=int, default=20000, help="single-window calls to time")
    parser.add_argument("--batch", type=int, default=10000, help="windows per batched call")
    parser.add_argument("--repeats", type=int, default=50, help="batched calls to time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    model = Forecaster.load(args.model, threads=args.threads)
    rng = np.random.default_rng(0)
    w = model.meta.window
    one = rng.uniform(1200, 4500, size=(1, w)).astype(np.float32)
    many = rng.uniform(1200, 4500, size=(args.batch, w)).astype(np.float32)
    results = {"cpus": os.cpu_count(), "threads": args.threads, "window": w, "networks": {}}
    print(f"model {model.directory} (window {w}, horizons {model.meta.horizons_s}), {os.cpu_count()} CPUs, "
          f"{args.threads} thread(s)")
    for name in [n for n in model.available() if n.startswith("student") and n != "student_no_kd"]:
        entry = measure(model, name, one, many, args)
        results["networks"][name] = entry
        print(f"{name:16} single window: median {entry['single_median_us']:.1f} us, p99 {entry['single_p99_us']:.1f} us"
              f" (via predict(): {entry['single_via_predict_median_us']:.1f} us); {args.batch} windows in one call: "
              f"median {entry['batch_median_ms']:.2f} ms; {entry['file_bytes']:,} bytes")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
