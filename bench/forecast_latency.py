"""Latency of the forecaster runtime (onnxruntime, CPU) as the operator uses it.

    python bench/forecast_latency.py [--model default] [--json out/forecast_latency.json]

Prints, for each student network in the model directory (student, and student_int8 /
student_pruned when present): the median and 99th-percentile latency of a single-window
forecast (one control period of one policy) over --single calls, and the median time of one
call forecasting --batch windows at once, over --repeats calls. One intra-op thread, as the
operator runs it. Then what the online adapter (forecaster/adapt.py) adds: learning one second of
history, and adapting one forecast.
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

from gridshift.forecaster.adapt import OnlineAdapter
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


def adapter_cost(model: Forecaster, seconds: int = 3600, period: int = 5) -> dict:
    """What the online adapter adds to a control period: learn() walking an hour of a square-wave
    load one period at a time, as the operator and the simulator call it, and one adjust()."""
    adapter = OnlineAdapter(model.meta.window, model.meta.horizons_s, model.meta.step_s)
    t = np.arange(seconds + 200, dtype=float)
    values = np.where(t % 70 < 45, 4400.0, 1200.0)
    keep = model.meta.window + 40
    started = time.perf_counter()
    for end in range(200, seconds + 200, period):
        adapter.learn(t[end - keep:end], values[end - keep:end], lambda w: model.predict(w).p50)
    per_step = (time.perf_counter() - started) / seconds
    window = values[-model.meta.window:]
    p50 = model.predict(window).p50[0]
    adjust = timed(lambda: adapter.adjust(window, p50), 2000)
    return {"learn_per_step_us": per_step * 1e6, "adjust_us": float(np.median(adjust) * 1e6)}


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
    results["adapter"] = adapter_cost(model)
    print(f"online adapter: learning one second of history (the network on its window included) "
          f"{results['adapter']['learn_per_step_us']:.0f} us, adapting one forecast "
          f"{results['adapter']['adjust_us']:.0f} us")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
