"""``gridshift feasibility``: is moving a job into a renewable window worth it?"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click

from gridshift.cli.common import BITRATE, BYTES, DURATION, POWER, writable_file

NOT_FEASIBLE = 1  # every error is a usage error (2): the inputs are all there is


@click.command()
@click.option("--checkpoint", required=True, type=BYTES, help="Checkpoint size, e.g. 80GiB, 1.5TB.")
@click.option("--bandwidth", required=True, type=BITRATE, help="WAN bandwidth, e.g. 10Gbit/s, 400Mbps, 1GB/s.")
@click.option("--window", required=True, type=DURATION, help="Remaining renewable window, e.g. 3h, 45min, 1h30min.")
@click.option("--job-power", type=POWER, default="6kW", show_default=True, help="The job's power while running.")
@click.option("--idle-power", type=POWER, help="Power held while the job is stopped for the move (default 25% of job).")
@click.option("--margin", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.2, show_default=True,
              help="The move must fit in (1 - margin) of the window.")
@click.option("--write-rate", type=BITRATE, default="2GB/s", show_default=True,
              help="Checkpoint write rate at the source.")
@click.option("--read-rate", type=BITRATE, default="2GB/s", show_default=True,
              help="Checkpoint read rate at the destination.")
@click.option("--json", "as_json", is_flag=True, help="Print the move and the verdict as JSON.")
@click.option("--plot", metavar="PNG", help="Also draw the feasibility domain.")
def feasibility(checkpoint: float, bandwidth: float, window: float, job_power: float, idle_power: float | None,
                margin: float, write_rate: float, read_rate: float, as_json: bool, plot: str | None) -> int:
    """Is moving a job into a renewable window worth it? Exit 0: yes, 1: no, 2: an error."""
    from gridshift.planner.feasibility import Move, assess

    if plot:
        writable_file(plot, "--plot")
        if importlib.util.find_spec("matplotlib") is None:
            raise click.BadParameter("drawing needs matplotlib: pip install 'gridshift[plot]'", param_hint="'--plot'")
    try:
        move = Move(checkpoint_bytes=checkpoint, bandwidth_bps=bandwidth, window_s=window, margin=margin,
                    job_power_w=job_power, idle_power_w=idle_power, checkpoint_write_Bps=write_rate / 8,
                    restore_read_Bps=read_rate / 8)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    verdict = assess(move)
    if as_json:
        print(json.dumps({"move": move.__dict__, "verdict": verdict.as_dict()}, indent=2))
    else:
        print(verdict.explain())
    if plot:
        from gridshift.plots.feasibility import plot_domain

        click.echo(f"wrote {plot_domain(move, verdict, Path(plot))}", err=True)
    return 0 if verdict.feasible else NOT_FEASIBLE
