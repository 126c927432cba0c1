"""Migration evaluation over many seeded job streams: stay, energy-only chasing and
feasibility-aware migration on real EIA-930 wind and solar, per WAN regime.

    python bench/migration_eval.py [--seeds 10] [--days 7] [--start 2022-06-01] [--sites CISO,ERCO,MISO] [--json PATH]

Prints, per regime, the mean non-renewable kWh and mean job delay over the seeds and the total
number of moves and aborted moves (moves that arrived after the destination's window closed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import write_json

from gridshift.sim.migration import STRATEGIES, build_scenario, compare
from gridshift.telemetry.grid import load_eia930

REGIMES = {"1-100 Gbit/s": (1e9, 100e9), "0.1-1 Gbit/s": (1e8, 1e9)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "grid"
                                              / "eia-930-2022-hourly"))
    parser.add_argument("--sites", default="CISO,ERCO,MISO")
    parser.add_argument("--start", default="2022-06-01")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    mixes = {s: load_eia930(Path(args.data) / f"{s}.csv") for s in args.sites.split(",")}
    start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.UTC).timestamp()
    start_hour = int((start - next(iter(mixes.values())).times[0]) // 3600)
    series = {s: m.variable_renewable for s, m in mixes.items()}
    result: dict[str, object] = {"sites": args.sites, "start": args.start, "days": args.days, "seeds": args.seeds}
    for label, bandwidth in REGIMES.items():
        runs = [compare(build_scenario(series, start_hour=start_hour, days=args.days, seed=seed,
                                       bandwidth_bps=bandwidth)) for seed in range(args.seeds)]
        table = {}
        print(f"\nWAN {label} ({args.seeds} seeds, {args.days} days from {args.start}, sites {args.sites})")
        print(f"{'strategy':<10} {'non-renewable kWh':>18} {'mean delay h':>13} {'moves':>6} {'aborted':>8}")
        for s in STRATEGIES:
            row = {"nonrenewable_kwh": float(np.mean([r[s]["nonrenewable_kwh"] for r in runs])),
                   "mean_delay_h": float(np.mean([r[s]["mean_delay_h"] for r in runs])),
                   "moves": int(sum(r[s]["moves"] for r in runs)),
                   "aborted_moves": int(sum(r[s]["aborted_moves"] for r in runs))}
            table[s] = row
            print(f"{s:<10} {row['nonrenewable_kwh']:>18.1f} {row['mean_delay_h']:>13.2f} {row['moves']:>6} "
                  f"{row['aborted_moves']:>8}")
        result[label] = table
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
