"""How the online adapter's memory and ridge settings do on real and simulated load (no torch).

    python bench/forecast_adapt.py [--hours 4] [--json out/forecast_adapt.json]

The adapter (gridshift/forecaster/adapt.py) on persistence as its base network, replayed as the
operator runs it, scored like `gridshift forecast evaluate` (last 40 % of each series), MAE in
watts at 5, 10 and 30 s, for each setting below, on:
- the five H100 runs (one node, 1 s; each one job's rhythm, 11.5 minutes);
- the uncontrolled load of the two bundled simulator sites (`--hours` of each, hundreds of jobs).
Persistence alone and DLinear (fitted on each series' first 60 %) are printed beside them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_json

from gridshift.forecaster.adapt import DEFAULT_HALF_LIVES_S, DEFAULT_RIDGE, adapted_medians
from gridshift.forecaster.baselines import DLinear, PersistenceBaseline
from gridshift.forecaster.metrics import make_windows
from gridshift.sim import scenario as scenarios
from gridshift.sim.peak import simulate
from gridshift.telemetry.series import longest
from gridshift.telemetry.traces import load_nvidia_smi_csv

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STEPS = (5, 10, 30)
WINDOW = 120
SETTINGS = {
    "default": {},
    "1 min only": {"half_lives_s": (60.0,)},
    "10 min only": {"half_lives_s": (600.0,)},
    "1 h only": {"half_lives_s": (3600.0,)},
    "ridge 0.3": {"ridge": 0.3},
    "ridge 30": {"ridge": 30.0},
}


def score(series: list[np.ndarray], predict) -> list[float]:
    errors = []
    for values in series:
        x, y, origins = make_windows(values, WINDOW, STEPS)
        scored = origins >= int(0.6 * len(values))
        errors.append(np.abs(y[scored] - predict(values, x, y)[scored]))
    return [round(float(v), 1) for v in np.concatenate(errors).mean(axis=0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    runs = sorted((args.data_dir / "gpu-power" / "h100-8gpu-llm-training").glob("run-*-per-gpu.csv"))
    sets = {"h100 runs": [longest(load_nvidia_smi_csv(f).node().resample(1.0, 5.0)).values for f in runs]}
    for name in ("training-64", "mixed"):
        scn = scenarios.load(name)
        site = scn.site(scn.job_traces(args.data_dir), seconds=int(args.hours * 3600))
        sets[f"{name} site"] = [simulate(site, scn.setup(1e9), "none").load_w]

    def persistence(x: np.ndarray) -> np.ndarray:
        return PersistenceBaseline(WINDOW, STEPS).predict(x)

    print(f"default: memories {DEFAULT_HALF_LIVES_S} s, ridge {DEFAULT_RIDGE}; MAE (W) at {STEPS} s")
    results: dict[str, dict[str, list[float]]] = {}
    for label, series in sets.items():
        rows = {"persistence": score(series, lambda v, x, y: persistence(x)),
                "dlinear": score(series, lambda v, x, y: DLinear(WINDOW, STEPS).fit(v[:int(0.6 * len(v))]).predict(x))}
        for setting, options in SETTINGS.items():
            rows[f"adapter, {setting}"] = score(
                series, lambda v, x, y, o=options: adapted_medians(x, persistence(x), y, STEPS, 1.0, **o))
        results[label] = rows
        print(f"\n{label} ({len(series)} series)")
        for row, maes in rows.items():
            print(f"  {row:24}" + "".join(f"{m:>10.0f}" for m in maes))
    write_json(args.json, {"steps_s": STEPS, "window": WINDOW, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
