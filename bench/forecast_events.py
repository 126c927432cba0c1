"""The deployed forecaster as a peak detector and point forecaster, out of sample, on the fold models
of ``bench/crossval.py`` (trained, or read from its cache, with the same recipe).

    python bench/forecast_events.py [--trace-dir ../shared/data] [--cap W] [--json out/forecast_events.json]

For each of the five full H100 runs, the model trained on the other four and the two short runs
scores the held-out run with the protocol of ``gridshift forecast evaluate`` (adapted online as the
operator runs it; scored on the last 40 %); then the bundled H100 student scores the 24 TitanX runs
(the leave-one-hardware-out direction H100 -> TitanX). Prints pooled MAE per horizon of the student,
persistence and the period-aware seasonal naive, and the peak-detection figures (onsets past each
series' 90th percentile or ``--cap``, share flagged 10 s or more ahead, median lead, false alarms per
10 minutes, time in alarm) pooled over the held-out series.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_json
from crossval import DATA, SHORT, fold_model, runs
from forecast_loro import pooled as pooled_metrics

from gridshift.forecaster.evaluate import evaluate, forecaster_predictors
from gridshift.forecaster.metrics import event_rates
from gridshift.forecaster.runtime import Forecaster
from gridshift.telemetry.traces import load_series, trace_files

SHOWN = ("student", "student_offline", "persistence", "periodic_naive", "persistence_online")


def score(model: Forecaster, files: list[Path], cap: float | None) -> dict:
    meta = model.meta
    series = load_series(files, meta.step_s, 5.0, min_length=meta.window + max(meta.horizon_steps) + 1)
    return evaluate(series, {"student": forecaster_predictors(model)["student"]}, meta.window, meta.horizons_s,
                    meta.step_s, cap_w=cap)


def pooled(reports: list[dict]) -> dict:
    merged = pooled_metrics(reports)
    mae = {name: {h: block["mae"] for h, block in merged[name].items()} for name in SHOWN}
    lead = 10.0
    events = {name: event_rates([c for r in reports for c in r["event_counts"][name]], reports[0]["step_s"], lead)
              for name in SHOWN}
    return {"points": sum(r["points"] for r in reports), "mae": mae, "events": events}


def show(title: str, result: dict) -> None:
    print(f"\n{title} ({result['points']} scored origins)")
    print(f"{'model':20}{'MAE 5 s':>9}{'10 s':>7}{'30 s':>7}{'onsets':>8}{'>=10 s ahead':>14}{'lead':>7}"
          f"{'false/10min':>13}{'in alarm':>10}")
    for name in SHOWN:
        m, e = result["mae"][name], result["events"][name]
        flagged = "-" if e["flagged_ahead"] is None else f"{e['flagged_ahead']:.0%}"
        lead = "-" if e["median_lead_s"] is None else f"{e['median_lead_s']:.0f} s"
        print(f"{name:20}{m['5']:>9.0f}{m['10']:>7.0f}{m['30']:>7.0f}{e['onsets']:>8}{flagged:>14}{lead:>7}"
              f"{e['false_alarms_per_10min']:>13.1f}{e['time_in_alarm']:>10.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace-dir", type=Path, default=DATA)
    parser.add_argument("--cap", type=float, help="cap in watts for the peak figures (default: each series' p90)")
    parser.add_argument("--cache", type=Path, default=Path("out/crossval/models"))
    parser.add_argument("--json")
    args = parser.parse_args()
    started = time.monotonic()
    full = runs(args.trace_dir)
    short = sorted((args.trace_dir / SHORT).glob("*-per-gpu.csv"))
    reports = []
    for k, held_out in enumerate(full):
        train = [r for i, r in enumerate(full) if i != k] + short
        model = Forecaster.load(fold_model(train, args.cache, False, lambda m: print(m, flush=True)))
        reports.append(score(model, [held_out], args.cap))
        print(f"fold {k}: {held_out.name} scored", flush=True)
    loro = pooled(reports)
    show("leave-one-run-out, H100 (each fold's model never saw its run)", loro)
    titanx = trace_files([args.trace_dir / "gpu-power" / "titanx-2gpu"])
    loho = pooled([score(Forecaster.load("default"), titanx, args.cap)])
    show("H100 -> TitanX (the bundled model, trained on H100 only)", loho)
    print(f"\n{time.monotonic() - started:.0f} s")
    write_json(args.json, {"leave_one_run_out": loro, "h100_to_titanx": loho})
    return 0


if __name__ == "__main__":
    sys.exit(main())
