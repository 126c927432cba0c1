"""Simulator speed: one day of a 1,000-node training site at 1 s, every strategy asked for.

    python bench/sim_speed.py [--nodes 1000] [--hours 24] [--strategies student] [--json PATH]

The site is the bundled ``training-64`` scenario scaled to ``--nodes`` (job arrivals, the other
load and the battery scale with it), replaying the shared H100 node traces
(../shared/data/gpu-power). Prints, per strategy, the wall time and the simulated seconds per wall
second; the target is one simulated day in under 60 s on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from _common import write_json

from gridshift.forecaster.runtime import Forecaster
from gridshift.sim import scenario as sc
from gridshift.sim.peak import simulate


def scaled(nodes: int, hours: float) -> sc.Scenario:
    doc = yaml.safe_load(sc.bundled()["training-64"].read_text())
    factor = nodes / doc["site"]["nodes"]
    doc["site"]["nodes"] = nodes
    doc["site"]["otherLoadWatts"] = f"{30 * factor:g}kW"
    doc["training"]["meanInterarrival"] = f"{15 * 60 / factor:g}s"
    doc["battery"].update(capacity=f"{40 * factor:g}kWh", maxCharge=f"{20 * factor:g}kW",
                          maxDischarge=f"{40 * factor:g}kW")
    doc["duration"] = f"{hours:g}h"
    doc["name"] = f"training-{nodes}"
    return sc.parse(yaml.safe_dump(doc), f"training-64 scaled to {nodes} nodes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--strategies", nargs="+", default=["student"])
    parser.add_argument("--json")
    args = parser.parse_args()

    scn = scaled(args.nodes, args.hours)
    started = time.perf_counter()
    site = scn.site(scn.job_traces(args.trace_dir))
    build_s = time.perf_counter() - started
    model = Forecaster.load("default")
    free = simulate(site, scn.setup(1e9), "none")
    setup = scn.setup(scn.cap_w(free.load_w))
    print(f"{args.nodes} nodes, {len(site.jobs)} jobs, {args.hours:g} h at 1 s; site built in {build_s:.1f} s; "
          f"mean {free.load_w.mean() / 1e6:.2f} MW, max {free.load_w.max() / 1e6:.2f} MW")
    rows = []
    for strategy in args.strategies:
        started = time.perf_counter()
        r = simulate(site, setup, strategy, model=model)
        wall = time.perf_counter() - started
        rows.append({"strategy": strategy, "wall_s": round(wall, 2), "simulated_s": site.seconds,
                     "sim_seconds_per_wall_second": round(site.seconds / wall), "actions": r.actions})
        print(f"{strategy:<12} {wall:7.1f} s wall  {site.seconds / wall:9.0f} simulated s per wall s  "
              f"{r.actions} actions")
    write_json(args.json, {"nodes": args.nodes, "hours": args.hours, "jobs": len(site.jobs), "results": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
