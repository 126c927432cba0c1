"""``gridshift demo``: the closed loop on a local cluster."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from gridshift.cli.common import POSITIVE, Failed, preflight, stderr, writable_file


@click.command()
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False),
              help="Use this cluster (default: the local dev cluster, started if needed).")
@click.option("--duration", type=POSITIVE, default=300.0, show_default=True, help="Seconds to run.")
@click.option("--surge-at", type=POSITIVE, default=120.0, show_default=True,
              help="Second at which the fine-tuning surge starts (after 2 min of history by default).")
@click.option("--out", default="gridshift-demo.png", show_default=True, help="PNG timeline to write.")
@click.option("--trace-dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of real traces (default ../shared/data when present).")
def demo(kubeconfig: str | None, duration: float, surge_at: float, out: str, trace_dir: str | None) -> None:
    """The closed loop on a local cluster: surge, forecast, battery over Modbus, recharge off-peak."""
    if surge_at >= duration:
        raise click.BadParameter(f"{surge_at:g} must come before the end (--duration {duration:g})",
                                 param_hint="'--surge-at'")
    writable_file(out, "--out")
    preflight(control_plane=kubeconfig is None, prometheus=True, extras=("plot", "devcluster"))
    from gridshift.devcluster.binaries import BinaryError, ensure_prometheus
    from gridshift.devcluster.cluster import DevCluster, api_client_for
    from gridshift.devcluster.controlplane import ClusterError
    from gridshift.devcluster.demo import run_demo

    try:
        ensure_prometheus(log=stderr)
        if kubeconfig is None:
            info = DevCluster.status()
            kubeconfig = str(DevCluster.up(log=stderr).kubeconfig) if info is None else info["kubeconfig"]
    except (BinaryError, ClusterError, TimeoutError) as exc:
        raise Failed(str(exc)) from exc
    traces = Path(trace_dir) if trace_dir else None
    if traces is None and Path("../shared/data").is_dir():
        traces = Path("../shared/data").resolve()
    workdir = Path(tempfile.mkdtemp(prefix="gridshift-demo-"))
    result = run_demo(api_client_for(kubeconfig), Path(kubeconfig), workdir, duration_s=duration,
                      surge_at_s=surge_at, trace_dir=traces, out_png=Path(out),
                      print_fn=lambda line: print(line, flush=True))
    print(f"{len(result.actions)} actions; operator log in {workdir / 'operator.log'}")
