"""Battery peak shaving on real H100 node power: every strategy of gridshift.sim.peak on one site.

    python bench/peak_sim.py [--nodes 8] [--hours 2] [--seed 0] [--cap-fraction 0.92] [--json PATH]

The site is ``--nodes`` H100 nodes, each replaying the shared node-total traces
(../shared/data/gpu-power/h100-8gpu-llm-training/*-node.csv, concatenated, gap-free segments)
from a random offset. The cap is ``--cap-fraction`` of the site's highest second, the trigger 97%
of the cap, and the battery holds 5 minutes of the site's mean power at a rating of 30% of it.
Prints one row per strategy (energy above the cap, worst overshoot, longest run above it, 15-min
peak demand, battery throughput, actions) and the simulation speed in simulated seconds per
wall second. The student runs at each ``--student CONFIDENCE:HORIZON`` (the policy's
spec.forecast.confidence and horizonSeconds; 0.5 is the median): the trade-off between energy
above the cap and battery energy spent.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import write_json

from gridshift.ess.physics import BatteryPhysics
from gridshift.forecaster.conformal import tracked_bounds
from gridshift.forecaster.metrics import make_windows
from gridshift.forecaster.runtime import Forecaster
from gridshift.sim.peak import Battery, Setup, simulate
from gridshift.sim.strategies import STRATEGIES
from gridshift.telemetry.traces import load_series


def site_load(data: Path, nodes: int, seconds: int, seed: int) -> np.ndarray:
    segments = [s.values for s in load_series(sorted(data.glob("*-node.csv")), step=1.0) if len(s.values) > 60]
    if not segments:
        raise SystemExit(f"no node traces under {data}")
    one = np.concatenate(segments)
    rng = np.random.default_rng(seed)
    reps = int(np.ceil((seconds + len(one)) / len(one)))
    looped = np.tile(one, reps)
    return sum(looped[o:o + seconds] for o in rng.integers(0, len(one), nodes))


def bound_report(model: Forecaster, load: np.ndarray, confidence: float) -> dict[str, dict[str, dict[str, float]]]:
    """Coverage of the student's bound on this site and how far above the truth it sits, offline
    calibration alone and tracked online as the operator runs it."""
    steps = model.meta.horizon_steps
    x, y, _ = make_windows(load, model.meta.window, steps)
    fc = model.predict(x)
    static = fc.upper_at(confidence)
    tracked = tracked_bounds(static, y, x.mean(axis=1), steps, confidence, floor=fc.p50)
    return {kind: {f"{h:g}": {"coverage": float(np.mean(y[:, k] <= u[:, k])),
                              "gap_pct_of_mean": float(100 * np.mean(u[:, k] - y[:, k]) / np.mean(y))}
                   for k, h in enumerate(model.meta.horizons_s)}
            for kind, u in (("static", static), ("tracked", tracked))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "gpu-power"
                                              / "h100-8gpu-llm-training"))
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap-fraction", type=float, default=0.92)
    parser.add_argument("--student", nargs="+", default=["0.9:30", "0.9:10", "0.8:10", "0.5:10", "0.5:5"],
                        metavar="CONFIDENCE:HORIZON",
                        help="student settings to run (spec.forecast.confidence and horizonSeconds); the first "
                             "also runs without online bound tracking")
    parser.add_argument("--json")
    args = parser.parse_args()

    load = site_load(Path(args.data), args.nodes, int(args.hours * 3600), args.seed)
    cap = args.cap_fraction * float(load.max())
    mean = float(load.mean())
    setup = Setup(cap_w=cap, trigger_w=0.97 * cap,
                  battery=Battery(BatteryPhysics(capacity_wh=mean * 5 / 60, max_charge_w=0.15 * mean,
                                                 max_discharge_w=0.3 * mean)))
    model = Forecaster.load("default")
    print(f"site: {args.nodes} H100 nodes, {args.hours:g} h at 1 s; mean {mean / 1000:.1f} kW, "
          f"max {load.max() / 1000:.1f} kW; cap {cap / 1000:.1f} kW; battery "
          f"{setup.battery.physics.capacity_wh / 1000:.2f} kWh / {setup.battery.physics.max_discharge_w / 1000:.1f} kW")
    print(f"{'strategy':<22} {'kWh>cap':>8} {'worst W':>8} {'longest s':>9} {'peak kW':>8} {'batt kWh':>8} "
          f"{'cycles':>6} {'actions':>7} {'sim s/s':>8}")
    rows = []
    runs = [(s, s, setup) for s in STRATEGIES if s != "student"]
    for n, text in enumerate(args.student):
        confidence, horizon = float(text.split(":")[0]), int(text.split(":")[1])
        student = replace(setup, confidence=confidence, horizon_s=horizon)
        runs.append((f"student q{confidence:g} h{horizon}", "student", student))
        if n == 0:  # the offline calibration alone, without the operator's online tracking
            runs.append((f"student q{confidence:g} h{horizon} static", "student", replace(student, online_bound=False)))
    for label, strategy, run_setup in runs:
        started = time.perf_counter()
        r = simulate(load, run_setup, strategy, model=model)
        speed = len(load) / (time.perf_counter() - started)
        row = {**r.summary(), "strategy": label, "sim_seconds_per_wall_second": round(speed)}
        rows.append(row)
        print(f"{label:<22} {r.energy_above_cap_kwh:8.3f} {r.worst_overshoot_w:8.0f} {r.longest_overshoot_s:9d} "
              f"{r.peak_demand_kw:8.1f} {r.battery_discharged_kwh:8.2f} {r.battery_cycles:6.2f} {r.actions:7d} "
              f"{speed:8.0f}")
    bound = bound_report(model, load, setup.confidence)
    for kind, per_h in bound.items():
        print(f"p{setup.confidence * 100:g} bound on this site, {kind}: " + ", ".join(
            f"{h} s coverage {v['coverage']:.3f} gap {v['gap_pct_of_mean']:.1f}% of mean" for h, v in per_h.items()))
    battery = {**setup.battery.physics.__dict__, "reserve_fraction": setup.battery.reserve_fraction}
    write_json(args.json, {"nodes": args.nodes, "hours": args.hours, "seed": args.seed, "cap_w": cap,
                           "battery": battery, "results": rows, "bound": bound})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
