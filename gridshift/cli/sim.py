"""``gridshift simulate`` (peak shaving on a simulated site) and ``gridshift sim migration`` (moving
jobs between sites on real wind and solar)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import cast

import click

from gridshift.cli.common import BITRATE, BYTES, DURATION, Failed, Names, needs_extra, table, writable_file
from gridshift.sim.strategies import STRATEGIES, Strategy


def _strategies(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str] | None:
    names = [n.strip() for v in value for n in v.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(map(repr, unknown))}; choose from {', '.join(STRATEGIES)}",
                                 ctx, param)
    return names or None


@click.command()
@click.option("--scenario", required=True, metavar="FILE|NAME",
              help="A scenario YAML file, or a bundled one: training-64, mixed, synthetic-training.")
@click.option("--strategies", multiple=True, callback=_strategies, metavar="NAME[,NAME...]",
              help=f"Strategies to run, comma-separated or repeated, of {', '.join(STRATEGIES)} "
                   "(default: the scenario's).")
@click.option("--duration", type=DURATION, help="Simulate only this long, e.g. 2h (default: the scenario's).")
@click.option("--trace-dir", default="../shared/data", show_default=True,
              help="Folder the scenario's trace files are relative to (not read by a scenario with only "
                   "synthetic traces).")
@click.option("--model", default="default", show_default=True,
              help="Forecaster model directory for student (default: the bundled one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with a block per strategy.")
@click.option("--plot", metavar="PNG", help="Also draw grid power against the cap and the costs.")
@click.option("--quiet", is_flag=True, help="No progress bar (there is none when stderr is no terminal).")
def simulate(scenario: str, strategies: list[str] | None, duration: float | None, trace_dir: str, model: str,
             as_json: bool, plot: str | None, quiet: bool) -> None:
    """Peak shaving on a simulated site: every strategy on one scenario."""
    if plot:
        writable_file(plot, "--plot")
        needs_extra("matplotlib", "plot", what="--plot")
    from gridshift.forecaster.runtime import Forecaster, ModelError
    from gridshift.progress import text_progress
    from gridshift.sim import scenario as sc

    try:
        scn = sc.load(scenario)
        seconds = int(duration) if duration else scn.seconds
        chosen = cast("list[Strategy]", strategies or scn.file.strategies)
        traces = scn.job_traces(trace_dir)
        forecaster = Forecaster.load(model) if "student" in chosen else None
    except (sc.ScenarioError, ModelError) as exc:
        raise Failed(str(exc)) from exc
    site = scn.site(traces, seconds=seconds)
    progress = None
    if not quiet and sys.stderr.isatty():
        bar = text_progress()
        progress = lambda label: lambda done, total: bar(label, done, total, "simulated s")  # noqa: E731
    run = sc.compare(scn, site, chosen, forecaster, progress=progress)
    if progress is not None:
        print(file=sys.stderr)
    cap, setup, results = run.cap_w, run.setup, run.results
    summaries = {s: r.summary() for s, r in results.items()}
    if as_json:
        print(json.dumps({"scenario": scn.file.name, "seconds": seconds, "cap_w": cap, "trigger_w": setup.trigger_w,
                          "jobs": len(site.jobs), "results": summaries}, indent=2))
    else:
        print(f"{scn.file.name}: {seconds / 3600:g} h, {site.nodes} nodes, {len(site.jobs)} jobs, "
              f"{len(site.services)} services; cap {cap / 1000:.1f} kW, trigger {setup.trigger_w / 1000:.1f} kW")
        rows = [["strategy", "kWh>cap", "worst W", "longest s", "peak kW", "charge", "batt kWh", "cycles",
                 "delay GPU-h", "shed rep-h", "actions"]]
        for s, r in results.items():
            rows.append([s, f"{r.energy_above_cap_kwh:.3f}", f"{r.worst_overshoot_w:.0f}", str(r.longest_overshoot_s),
                         f"{r.peak_demand_kw:.1f}", f"{r.demand_charge:.0f}", f"{r.battery_discharged_kwh:.2f}",
                         f"{r.battery_cycles:.2f}", f"{r.job_delay_gpu_h:.2f}", f"{r.inference_shed_replica_h:.2f}",
                         str(r.actions)])
        print(table(rows))
    if plot:
        from gridshift.plots.simulation import plot_simulation

        grids = {s: r.grid_w for s, r in results.items()}
        drawn = plot_simulation(scn.file.name, cap, grids, cast("dict[str, dict[str, float]]", summaries), Path(plot))
        click.echo(f"wrote {drawn}", err=True)


@click.group()
def sim() -> None:
    """Trace-driven simulations."""


def _low_high(kind: click.ParamType, text: str, option: str) -> tuple[float, float]:
    """``LOW-HIGH`` (or one value for both) read with ``kind``; a usage error naming ``option``."""
    lo, _, hi = text.partition("-")
    try:
        return kind.convert(lo, None, None), kind.convert(hi or lo, None, None)
    except click.BadParameter as exc:
        exc.param_hint = f"'{option}'"
        raise


def _bandwidths(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    return {v: _low_high(BITRATE, v, "--bandwidth") for v in value}


@sim.command()
@click.option("--data", default="../shared/data/grid/eia-930-2022-hourly", show_default=True,
              type=click.Path(file_okay=False), help="Folder of EIA-930 {BA}.csv files.")
@click.option("--sites", default="CISO,ERCO,MISO", show_default=True, type=Names(2, "two balancing authorities"),
              help="Balancing authorities, one site each, comma-separated.")
@click.option("--start", default="2022-06-01", show_default=True, help="First day jobs may arrive (UTC date).")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True, help="Days of arrivals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the job draws.")
@click.option("--bandwidth", multiple=True, default=("1Gbit/s-100Gbit/s", "100Mbit/s-1Gbit/s"), show_default=True,
              callback=_bandwidths, metavar="LOW-HIGH",
              help="A WAN regime (log-uniform per site pair); repeat for more.")
@click.option("--checkpoint", default="1GB-1TB", show_default=True, metavar="LOW-HIGH",
              help="Checkpoint sizes (log-uniform).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", metavar="PNG", help="Also draw the comparison.")
def migration(data: str, sites: list[str], start: str, days: int, seed: int,
              bandwidth: dict[str, tuple[float, float]], checkpoint: str, as_json: bool, plot: str | None) -> None:
    """Stay vs energy-only chasing vs feasibility-aware migration on EIA-930 wind and solar."""
    try:
        first_day = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--start'") from exc
    sizes = _low_high(BYTES, checkpoint, "--checkpoint")
    if plot:
        writable_file(plot, "--plot")
        needs_extra("matplotlib", "plot", what="--plot")
    from gridshift.sim.migration import build_scenario, compare
    from gridshift.telemetry.grid import load_eia930
    from gridshift.telemetry.traces import TraceError

    try:
        mixes = {s: load_eia930(Path(data) / f"{s}.csv") for s in sites}
    except (OSError, TraceError) as exc:
        raise Failed(str(exc)) from exc
    first = next(iter(mixes.values()))
    start_hour = int((first_day.timestamp() - first.times[0]) // 3600)
    results = {}
    for label, regime in bandwidth.items():
        try:
            scn = build_scenario({s: m.variable_renewable for s, m in mixes.items()}, start_hour=start_hour,
                                 days=days, seed=seed, bandwidth_bps=regime, checkpoint_bytes=sizes)
        except ValueError as exc:
            raise Failed(str(exc)) from exc
        results[label] = compare(scn)
    if as_json:
        print(json.dumps({"sites": sites, "start": start, "days": days, "seed": seed,
                          "jobs": len(scn.jobs), "results": results}, indent=2, default=float))
    else:
        print(f"{len(scn.jobs)} jobs over {days} days from {start} at {', '.join(sites)}; checkpoints {checkpoint}")
        for label, by_strategy in results.items():
            print(f"\nWAN {label}")
            print(f"{'strategy':<10} {'non-renewable kWh':>18} {'mean delay h':>13} {'moves':>6} {'aborted':>8}")
            for strategy, r in by_strategy.items():
                print(f"{strategy:<10} {r['nonrenewable_kwh']:>18.1f} {r['mean_delay_h']:>13.2f} {r['moves']:>6} "
                      f"{r['aborted_moves']:>8}")
    if plot:
        from gridshift.plots.migration import plot_comparison

        click.echo(f"wrote {plot_comparison(results, Path(plot))}", err=True)
