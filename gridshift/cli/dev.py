"""``gridshift dev``: a local control plane with fake GPU nodes, the telemetry twin that powers them,
and a simulated SunSpec battery on Modbus TCP."""

from __future__ import annotations

from pathlib import Path

import click

from gridshift.cli.common import FRACTION, PORT, POSITIVE, Failed, Names, preflight, stderr, until_interrupted

AT_LEAST_ONE = click.IntRange(min=1)
CLUSTER_DIR = click.option("--dir", "directory", type=click.Path(file_okay=False),
                           help="Cluster state directory (default ~/.cache/gridshift/clusters/default).")


@click.group()
def dev() -> None:
    """Developer tools: a local Kubernetes control plane, the telemetry twin, a battery simulator."""


@dev.group()
def cluster() -> None:
    """A real control plane on loopback with fake GPU nodes."""


@cluster.command()
@click.option("--prometheus", is_flag=True,
              help="Also find Prometheus, or build it from its Go module when none is on PATH.")
@click.option("--check", is_flag=True,
              help="Only check the prerequisites and estimate the build (exit 1 naming what is missing).")
def build(prometheus: bool, check: bool) -> None:
    """Only build (or find) the control-plane binaries; print their folder."""
    preflight(prometheus=prometheus)
    if check:
        return
    from gridshift.devcluster.binaries import BinaryError, ensure_binaries, ensure_prometheus

    try:
        bins = ensure_binaries(log=stderr)
        if prometheus:
            stderr(f"prometheus: {ensure_prometheus(log=stderr)}")
    except BinaryError as exc:
        raise Failed(str(exc)) from exc
    print(bins.directory)


@cluster.command()
@CLUSTER_DIR
def down(directory: str | None) -> None:
    """Stop every process of the local cluster."""
    from gridshift.devcluster.cluster import DevCluster

    stopped = DevCluster.down(Path(directory) if directory else None)
    print("cluster stopped" if stopped else "no cluster was running")


@cluster.command()
@CLUSTER_DIR
def status(directory: str | None) -> None:
    """Say whether the local cluster runs and where (exit 1 when none runs)."""
    from gridshift.devcluster.cluster import DevCluster

    info = DevCluster.status(Path(directory) if directory else None)
    if info is None:
        print("no cluster is running")
        raise click.exceptions.Exit(1)
    for key, value in info.items():
        print(f"{key + ':':14}{value}")


@cluster.command()
@CLUSTER_DIR
@click.option("--nodes", type=AT_LEAST_ONE, default=4, show_default=True, help="GPU nodes per site.")
@click.option("--gpus-per-node", type=AT_LEAST_ONE, default=8, show_default=True, help="nvidia.com/gpu per node.")
@click.option("--racks", type=AT_LEAST_ONE, default=2, show_default=True, help="Racks per site.")
@click.option("--sites", type=Names(1, "one site name"), default="site-a", show_default=True,
              help="Comma-separated site names.")
def up(directory: str | None, nodes: int, gpus_per_node: int, racks: int, sites: list[str]) -> None:
    """Build (once) and start etcd, the control plane and kwok GPU nodes."""
    preflight(prometheus=False, extras=("devcluster",))
    from gridshift.devcluster.binaries import BinaryError
    from gridshift.devcluster.cluster import DevCluster
    from gridshift.devcluster.controlplane import ClusterError, NodePool

    pools = [NodePool(count=nodes, gpus_per_node=gpus_per_node, site=s, racks=racks) for s in sites]
    try:
        started = DevCluster.up(directory=Path(directory) if directory else None, pools=pools, log=stderr)
    except (BinaryError, ClusterError, TimeoutError) as exc:
        raise Failed(str(exc)) from exc
    bin_dir = started.binaries.directory
    print(f"cluster is up: {started.node_count} GPU nodes, API server {started.server}")
    print(f"kubeconfig:    {started.kubeconfig}")
    print(f"binaries:      {bin_dir}")
    print("try:")
    print(f"  export KUBECONFIG={started.kubeconfig} PATH={bin_dir}:$PATH")
    print("  kubectl get nodes -L gridshift.io/site,gridshift.io/rack")
    print(f"stop it with:  gridshift dev cluster down{' --dir ' + str(directory) if directory else ''}")


@dev.command()
@click.option("--name", default="ess", show_default=True, help="Label of its metrics.")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=PORT, default=5020, show_default=True, help="Modbus TCP port (502 needs root).")
@click.option("--unit-id", type=click.IntRange(0, 247), default=1, show_default=True, help="Modbus unit id.")
@click.option("--capacity-wh", type=POSITIVE, default=100_000.0, show_default=True, help="Capacity (Wh).")
@click.option("--max-charge-w", type=POSITIVE, default=50_000.0, show_default=True, help="Charge limit (W).")
@click.option("--max-discharge-w", type=POSITIVE, default=50_000.0, show_default=True, help="Discharge limit (W).")
@click.option("--efficiency", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.9, show_default=True,
              help="Round-trip efficiency.")
@click.option("--soc", type=FRACTION, default=0.8, show_default=True, help="Initial state of charge, 0 to 1.")
@click.option("--soh", type=FRACTION, default=1.0, show_default=True, help="State of health, 0 to 1.")
@click.option("--reserve-min-pct", type=click.FloatRange(0.0, 100.0), default=10.0, show_default=True,
              help="The device's SoCRsvMin (%).")
@click.option("--metrics-port", type=PORT, default=0, help="Serve ess_* gauges on this port (default: off).")
def battery(name: str, bind: str, port: int, unit_id: int, capacity_wh: float, max_charge_w: float,
            max_discharge_w: float, efficiency: float, soc: float, soh: float, reserve_min_pct: float,
            metrics_port: int) -> None:
    """Serve a simulated SunSpec battery (models 1, 802, 124) on Modbus TCP."""
    from prometheus_client import CollectorRegistry, start_http_server

    from gridshift.devcluster.battery_sim import SunSpecBatterySimulator
    from gridshift.ess.physics import BatteryPhysics

    try:
        physics = BatteryPhysics(capacity_wh, max_charge_w, max_discharge_w, round_trip_efficiency=efficiency,
                                 soc_fraction=soc, soh_fraction=soh)
    except ValueError as exc:
        raise Failed(str(exc)) from exc
    sim = SunSpecBatterySimulator(physics, name=name, host=bind, port=port, unit_id=unit_id,
                                  reserve_min_pct=reserve_min_pct).start()
    print(f"SunSpec battery {name!r} on modbus://{bind}:{sim.port} unit {unit_id} "
          f"(models 1, 802, 124 at {sim.base})", flush=True)
    if metrics_port:
        registry = CollectorRegistry()
        registry.register(sim)
        start_http_server(metrics_port, addr=bind, registry=registry)
        print(f"metrics on http://{bind}:{metrics_port}/metrics", flush=True)
    until_interrupted(sim.stop)


@dev.command()
@click.option("--kubeconfig", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The cluster whose kwok nodes it powers.")
@click.option("--port", type=PORT, default=9400, show_default=True, help="Port of /metrics (as dcgm-exporter).")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--trace-dir", type=click.Path(exists=True, file_okay=False),
              help="Folder that relative gridshift.io/power-trace paths start from.")
@click.option("--idle-watts", type=click.FloatRange(min=0.0), default=60.0, show_default=True,
              help="Power of a GPU no pod uses.")
def twin(kubeconfig: str, port: int, bind: str, trace_dir: str | None, idle_watts: float) -> None:
    """Serve DCGM-style GPU power for the pods on kwok nodes; run batteries."""
    from gridshift.devcluster.cluster import api_client_for
    from gridshift.devcluster.twin import Twin

    server = Twin(api_client_for(kubeconfig), trace_dir=Path(trace_dir) if trace_dir else None,
                  idle_w=idle_watts).serve(port, bind)
    print(f"telemetry twin on http://{bind}:{port}/metrics", flush=True)
    until_interrupted(server.stop)
