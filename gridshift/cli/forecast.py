"""``gridshift forecast``: train, evaluate and plot the power forecaster."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gridshift.cli.common import POSITIVE, Failed, PositiveFloats, needs_extra, table, writable_file

DATA_HELP = ("Trace file or folder (repeat for more): nvidia-smi CSV, node CSV, timestamp,value CSV or "
             "Prometheus query_range JSON.")
MAX_GAP = click.option("--max-gap", type=POSITIVE, default=5.0, show_default=True,
                       help="Longest gap (s) bridged; longer ones split a trace.")
CONFIDENCE = click.option("--confidence", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.9,
                          show_default=True, help="Upper-bound level scored for coverage.")
MODEL = click.option("--model", default="default", show_default=True,
                     help="Model directory, or 'default' (the bundled one).")


@click.group()
def forecast() -> None:
    """Train, evaluate and plot the power forecaster."""


@forecast.command()
@click.option("--data", required=True, multiple=True, metavar="PATH", help=DATA_HELP)
@click.option("--out", required=True, metavar="DIR", type=click.Path(file_okay=False), help="Model directory to write.")
@click.option("--step", type=POSITIVE, default=1.0, show_default=True, help="Resampling step in seconds.")
@click.option("--window", type=click.IntRange(min=1), default=120, show_default=True, help="Look-back window in steps.")
@click.option("--horizons", type=PositiveFloats(), default="5,10,30", show_default=True,
              help="Forecast horizons in seconds, comma-separated.")
@MAX_GAP
@click.option("--teacher-epochs", type=click.IntRange(min=1), default=60, show_default=True, help="Teacher epochs.")
@click.option("--student-epochs", type=click.IntRange(min=1), default=300, show_default=True, help="Student epochs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train; auto takes cuda when there is one.")
@click.option("--no-distill", multiple=True, metavar="TERM",
              type=click.Choice(["point", "feature", "multiscale", "spectral"]),
              help="Switch a distillation term off for the main student (repeat for more).")
@click.option("--ablations", is_flag=True, help="Also train a student without each term.")
@click.option("--per-gpu", is_flag=True, help="Also train on each GPU's own series.")
@click.option("--no-teacher", is_flag=True, help="Do not export the teacher (smaller directory).")
@click.option("--prune", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, metavar="FRACTION",
              help="Also export student_pruned with this fraction of weights zeroed.")
@click.option("--quantize", is_flag=True, help="Also export student_int8 (dynamic int8).")
def train(data: tuple[str, ...], out: str, step: float, window: int, horizons: tuple[float, ...], max_gap: float,
          teacher_epochs: int, student_epochs: int, seed: int, device: str, no_distill: tuple[str, ...],
          ablations: bool, per_gpu: bool, no_teacher: bool, prune: float, quantize: bool) -> None:
    """Train teacher and distilled student on traces; write a model directory."""
    needs_extra("torch", "train", what="training")
    from dataclasses import replace

    from gridshift.forecaster.train.distill import DistillWeights
    from gridshift.forecaster.train.fit import TrainConfig, fit_models, write_model_dir
    from gridshift.progress import text_progress
    from gridshift.telemetry.traces import TraceError, load_gpu_series, load_series

    cfg = TrainConfig(step_s=step, window=window, horizons_s=horizons, seed=seed, teacher_epochs=teacher_epochs,
                      student_epochs=student_epochs, device=_device(device))
    cfg = replace(cfg, distill=DistillWeights().without(*no_distill) if no_distill else DistillWeights())
    paths: list[str | Path] = list(data)
    try:
        series = load_series(paths, cfg.step_s, max_gap, min_length=cfg.window + cfg.trajectory + 1)
        extra = load_gpu_series(paths, cfg.step_s, max_gap, cfg.window + cfg.trajectory + 1) if per_gpu else []
        result = fit_models(series, cfg, extra_fit=extra, ablations=ablations, progress=text_progress())
    except (TraceError, ValueError) as exc:
        print(file=sys.stderr)
        raise Failed(str(exc)) from exc
    print(file=sys.stderr)
    networks = tuple(n for n in result.students if n == "student" or n.startswith("student_no_"))
    written = write_model_dir(result, Path(out), [Path(p) for p in paths], include_teacher=not no_teacher,
                              networks=networks, prune=prune, quantize=quantize)
    rows = [["network", "parameters", "train s", *[f"MAE@{h:g}s" for h in horizons]]]
    for name, per_h in result.validation.items():
        params = result.parameters["teacher" if name == "teacher" else "student"]
        seconds = f"{result.seconds.get(name, 0):.0f}"
        rows.append([name, f"{params:,}", seconds, *[f"{v:.0f} W" for v in per_h.values()]])
    print(table(rows))
    print(f"(MAE on the held-out calibration tails of the training series)\nwrote {written}")


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@forecast.command()
@MODEL
@click.option("--data", required=True, multiple=True, metavar="PATH", help=DATA_HELP)
@MAX_GAP
@CONFIDENCE
@click.option("--cap", type=POSITIVE, metavar="W",
              help="Cap for the peak-detection scores (default: each scored series' 90th percentile).")
@click.option("--skip-bad-files", is_flag=True,
              help="Warn about an unreadable trace file (garbage, NUL bytes) and go on with the others "
                   "(default: stop, naming it).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(model: str, data: tuple[str, ...], max_gap: float, confidence: float, cap: float | None,
             skip_bad_files: bool, as_json: bool) -> None:
    """Score a model and the baselines on traces."""
    from gridshift.forecaster.evaluate import evaluate as score
    from gridshift.forecaster.evaluate import forecaster_predictors
    from gridshift.forecaster.runtime import Forecaster, ModelError, training_overlap
    from gridshift.telemetry.traces import TraceError, load_series_reporting, trace_files

    try:
        loaded = Forecaster.load(model)
        meta = loaded.meta
        files = trace_files(list(data))
        scored: list[str | Path] = [*files]
        horizon = max(meta.horizon_steps)
        series, skipped = load_series_reporting(
            scored, meta.step_s, max_gap, meta.window + horizon + 1, skip_bad_files,
            needed_for=f"evaluating with a {meta.window}-sample window and a {horizon}-step horizon")
        for why in skipped:
            print(f"gridshift: warning: skipped {why}", file=sys.stderr)
        if not series:
            raise ValueError("nothing to evaluate: every file was skipped")
        report = score(series, forecaster_predictors(loaded, confidence), meta.window, meta.horizons_s,
                       meta.step_s, confidence=confidence, cap_w=cap)
    except (ModelError, TraceError, ValueError) as exc:
        raise Failed(str(exc)) from exc
    report["in_sample_files"] = overlap = training_overlap(meta, files)
    if overlap:
        print(f"gridshift: warning: the model was trained on {len(overlap)} of the {len(files)} scored files "
              f"({', '.join(Path(p).name for p in overlap)}): these scores are in-sample, not out of sample",
              file=sys.stderr)
    if as_json:
        print(json.dumps(report))
        return
    hs = [f"{h:g}" for h in meta.horizons_s]
    rows = [["model", *[f"MAE@{h}s" for h in hs], *[f"cov@{h}s" for h in hs]]]
    for name, per_h in report["metrics"].items():
        cov = [per_h[h]["coverage"] for h in hs]
        rows.append([name, *[f"{per_h[h]['mae']:.0f} W" for h in hs], *["-" if c is None else f"{c:.2f}" for c in cov]])
    print(f"{report['series']} series, {report['points']} forecast origins, scored on the last 40% of each; "
          f"coverage of the {confidence:g} upper bound as the operator tracks it online")
    print(table(rows))
    cap_text = f"{cap:g} W" if cap is not None else "each series' 90th percentile"
    print(f"\nas a peak detector (cap {cap_text}; alarm when the bound, or the median where there is none, "
          "is above the cap at any horizon; onsets after 30 s below the cap):")
    rows = [["model", "onsets", "flagged >=10 s ahead", "median lead", "false alarms / 10 min", "time in alarm"]]
    for name, ev in report["events"].items():
        rows.append([name, str(ev["onsets"]), "-" if ev["flagged_ahead"] is None else f"{ev['flagged_ahead']:.0%}",
                     "-" if ev["median_lead_s"] is None else f"{ev['median_lead_s']:.0f} s",
                     f"{ev['false_alarms_per_10min']:.1f}", f"{ev['time_in_alarm']:.0%}"])
    print(table(rows))


@forecast.command()
@MODEL
@click.option("--data", required=True, metavar="PATH", help="One trace file.")
@click.option("--out", required=True, metavar="PNG", help="The PNG to write.")
@MAX_GAP
@CONFIDENCE
def plot(model: str, data: str, out: str, max_gap: float, confidence: float) -> None:
    """PNG of forecast versus actual and error by horizon."""
    writable_file(out, "--out")
    needs_extra("matplotlib", "plot")
    from gridshift.forecaster.plot import plot_forecast
    from gridshift.forecaster.runtime import Forecaster, ModelError
    from gridshift.telemetry.series import longest
    from gridshift.telemetry.traces import TraceError, load_series

    try:
        loaded = Forecaster.load(model)
        series = longest(load_series([data], loaded.meta.step_s, max_gap))
        path = plot_forecast(loaded, series, Path(out), confidence)
    except (ModelError, TraceError, ValueError, RuntimeError) as exc:
        raise Failed(str(exc)) from exc
    print(f"wrote {path}")
