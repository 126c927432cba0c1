"""The ``gridshift`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from gridshift import __version__


def _cmd_crd(args: argparse.Namespace) -> int:
    from gridshift.api.crd import all_crds, render_yaml
    from gridshift.api.reference import api_reference

    docs = [render_yaml(c) for c in all_crds()]
    if args.reference:
        Path(args.reference).parent.mkdir(parents=True, exist_ok=True)
        Path(args.reference).write_text(api_reference(all_crds()))
        print(f"wrote {args.reference}")
    if args.write:
        out = Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for crd, text in zip(all_crds(), docs, strict=True):
            path = out / f"{crd['metadata']['name']}.yaml"
            path.write_text(text)
            print(f"wrote {path}")
    elif not args.reference:
        sys.stdout.write("---\n".join(docs))
    return 0


def _parse_pools(args: argparse.Namespace):
    from gridshift.devcluster.controlplane import NodePool

    sites = [s.strip() for s in args.sites.split(",") if s.strip()]
    if not sites:
        raise SystemExit("gridshift: --sites: give at least one site name")
    return [NodePool(count=args.nodes, gpus_per_node=args.gpus_per_node, site=s, racks=args.racks) for s in sites]


def _preflight(*, control_plane: bool = True, prometheus: bool, extras: tuple[str, ...] = ()) -> bool:
    """Check every prerequisite before a long build; print each missing one with its fix (False), or
    what is about to be built and for about how long (True)."""
    from gridshift.devcluster import preflight

    facts = preflight.check(control_plane=control_plane, prometheus=prometheus, extras=extras)
    found = preflight.problems(facts)
    for problem in found:
        print(f"gridshift: {problem}", file=sys.stderr)
    if not found and facts.to_build:
        minutes = preflight.build_estimate_s(facts) / 60.0
        _stderr(f"first run on this machine: building {', '.join(facts.to_build)} from Go modules, about "
                f"{minutes:.0f} min on {facts.cores} cores (cached in {facts.cache} for later runs)")
    return not found


def _cmd_cluster_up(args: argparse.Namespace) -> int:
    from gridshift.devcluster.binaries import BinaryError
    from gridshift.devcluster.cluster import DevCluster
    from gridshift.devcluster.controlplane import ClusterError

    if not _preflight(prometheus=False, extras=("devcluster",)):
        return 1
    directory = Path(args.dir) if args.dir else None
    try:
        cluster = DevCluster.up(directory=directory, pools=_parse_pools(args), log=_stderr)
    except (BinaryError, ClusterError, TimeoutError) as exc:
        print(f"gridshift: {exc}", file=sys.stderr)
        return 1
    bin_dir = cluster.binaries.directory
    print(f"cluster is up: {cluster.node_count} GPU nodes, API server {cluster.server}")
    print(f"kubeconfig:    {cluster.kubeconfig}")
    print(f"binaries:      {bin_dir}")
    print("try:")
    print(f"  export KUBECONFIG={cluster.kubeconfig} PATH={bin_dir}:$PATH")
    print("  kubectl get nodes -L gridshift.io/site,gridshift.io/rack")
    print(f"stop it with:  gridshift dev cluster down{' --dir ' + str(args.dir) if args.dir else ''}")
    return 0


def _cmd_cluster_down(args: argparse.Namespace) -> int:
    from gridshift.devcluster.cluster import DevCluster

    stopped = DevCluster.down(Path(args.dir) if args.dir else None)
    print("cluster stopped" if stopped else "no cluster was running")
    return 0


def _cmd_cluster_status(args: argparse.Namespace) -> int:
    from gridshift.devcluster.cluster import DevCluster

    info = DevCluster.status(Path(args.dir) if args.dir else None)
    if info is None:
        print("no cluster is running")
        return 1
    for key, value in info.items():
        print(f"{key + ':':14}{value}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from gridshift.devcluster.binaries import BinaryError, ensure_binaries, ensure_prometheus

    if not _preflight(prometheus=args.prometheus):
        return 1
    if args.check:
        return 0
    try:
        bins = ensure_binaries(log=_stderr)
        if args.prometheus:
            _stderr(f"prometheus: {ensure_prometheus(log=_stderr)}")
    except BinaryError as exc:
        print(f"gridshift: {exc}", file=sys.stderr)
        return 1
    print(bins.directory)
    return 0


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SystemExit(f"gridshift: {flag}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise SystemExit(f"gridshift: {flag}: give positive numbers, got {text!r}")
    return values


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def _cmd_forecast_train(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("gridshift: training needs PyTorch: pip install 'gridshift[train]'", file=sys.stderr)
        return 1
    from dataclasses import replace

    from gridshift.forecaster.train.distill import DistillWeights
    from gridshift.forecaster.train.fit import TrainConfig, fit_models, write_model_dir
    from gridshift.progress import text_progress
    from gridshift.telemetry.traces import TraceError, load_gpu_series, load_series

    horizons = _floats(args.horizons, "--horizons")
    cfg = TrainConfig(step_s=args.step, window=args.window, horizons_s=horizons, seed=args.seed,
                      teacher_epochs=args.teacher_epochs, student_epochs=args.student_epochs,
                      device=_device(args.device))
    weights = DistillWeights().without(*args.no_distill) if args.no_distill else DistillWeights()
    cfg = replace(cfg, distill=weights)
    try:
        series = load_series(args.data, cfg.step_s, args.max_gap, min_length=cfg.window + cfg.trajectory + 1)
        extra = load_gpu_series(args.data, cfg.step_s, args.max_gap, cfg.window + cfg.trajectory + 1) \
            if args.per_gpu else []
        result = fit_models(series, cfg, extra_fit=extra, ablations=args.ablations, progress=text_progress())
    except (TraceError, ValueError) as exc:
        print(f"\ngridshift: {exc}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    networks = tuple(n for n in result.students if n == "student" or n.startswith("student_no_"))
    out = write_model_dir(result, Path(args.out), [Path(p) for p in args.data], include_teacher=not args.no_teacher,
                          networks=networks, prune=args.prune, quantize=args.quantize)
    rows = [["network", "parameters", "train s", *[f"MAE@{h:g}s" for h in horizons]]]
    for name, per_h in result.validation.items():
        params = result.parameters["teacher" if name == "teacher" else "student"]
        seconds = f"{result.seconds.get(name, 0):.0f}"
        rows.append([name, f"{params:,}", seconds, *[f"{v:.0f} W" for v in per_h.values()]])
    print(_table(rows))
    print(f"(MAE on the held-out calibration tails of the training series)\nwrote {out}")
    return 0


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _cmd_forecast_evaluate(args: argparse.Namespace) -> int:
    import json

    from gridshift.forecaster.evaluate import evaluate, forecaster_predictors
    from gridshift.forecaster.runtime import Forecaster, ModelError, training_overlap
    from gridshift.telemetry.traces import TraceError, load_series_reporting, trace_files

    try:
        model = Forecaster.load(args.model)
        meta = model.meta
        files = trace_files(args.data)
        horizon = max(meta.horizon_steps)
        series, skipped = load_series_reporting(
            files, meta.step_s, args.max_gap, meta.window + horizon + 1, args.skip_bad_files,
            needed_for=f"evaluating with a {meta.window}-sample window and a {horizon}-step horizon")
        for why in skipped:
            print(f"gridshift: warning: skipped {why}", file=sys.stderr)
        if not series:
            raise ValueError("nothing to evaluate: every file was skipped")
        if args.cap is not None and not args.cap > 0:
            raise ValueError(f"--cap must be a positive number of watts, got {args.cap:g}")
        report = evaluate(series, forecaster_predictors(model, args.confidence), meta.window, meta.horizons_s,
                          meta.step_s, confidence=args.confidence, cap_w=args.cap)
    except (ModelError, TraceError, ValueError) as exc:
        print(f"gridshift: {exc}", file=sys.stderr)
        return 1
    report["in_sample_files"] = overlap = training_overlap(meta, files)
    if overlap:
        print(f"gridshift: warning: the model was trained on {len(overlap)} of the {len(files)} scored files "
              f"({', '.join(Path(p).name for p in overlap)}): these scores are in-sample, not out of sample",
              file=sys.stderr)
    if args.json:
        print(json.dumps(report))
        return 0
    hs = [f"{h:g}" for h in meta.horizons_s]
    rows = [["model", *[f"MAE@{h}s" for h in hs], *[f"cov@{h}s" for h in hs]]]
    for name, per_h in report["metrics"].items():
        cov = [per_h[h]["coverage"] for h in hs]
        rows.append([name, *[f"{per_h[h]['mae']:.0f} W" for h in hs], *["-" if c is None else f"{c:.2f}" for c in cov]])
    print(f"{report['series']} series, {report['points']} forecast origins, scored on the last 40% of each; "
          f"coverage of the {args.confidence:g} upper bound as the operator tracks it online")
    print(_table(rows))
    cap = f"{args.cap:g} W" if args.cap is not None else "each series' 90th percentile"
    print(f"\nas a peak detector (cap {cap}; alarm when the bound, or the median where there is none, "
          "is above the cap at any horizon; onsets after 30 s below the cap):")
    rows = [["model", "onsets", "flagged >=10 s ahead", "median lead", "false alarms / 10 min", "time in alarm"]]
    for name, ev in report["events"].items():
        rows.append([name, str(ev["onsets"]), "-" if ev["flagged_ahead"] is None else f"{ev['flagged_ahead']:.0%}",
                     "-" if ev["median_lead_s"] is None else f"{ev['median_lead_s']:.0f} s",
                     f"{ev['false_alarms_per_10min']:.1f}", f"{ev['time_in_alarm']:.0%}"])
    print(_table(rows))
    return 0


def _cmd_forecast_plot(args: argparse.Namespace) -> int:
    from gridshift.forecaster.plot import plot_forecast
    from gridshift.forecaster.runtime import Forecaster, ModelError
    from gridshift.telemetry.series import longest
    from gridshift.telemetry.traces import TraceError, load_series

    try:
        model = Forecaster.load(args.model)
        series = longest(load_series([args.data], model.meta.step_s, args.max_gap))
        path = plot_forecast(model, series, Path(args.out), args.confidence)
    except (ModelError, TraceError, ValueError, RuntimeError) as exc:
        print(f"gridshift: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _cmd_operator_run(args: argparse.Namespace) -> int:
    import logging
    import os
    import secrets

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    import kopf
    from kubernetes import client
    from prometheus_client import start_http_server

    from gridshift.operator import handlers
    from gridshift.operator.metrics import REGISTRY

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.peering_lifetime < 3:
        print("gridshift: --peering-lifetime must be at least 3 seconds", file=sys.stderr)
        return 2
    config = handlers.OperatorConfig(
        args.prometheus_url, force_dry_run=args.dry_run, peered=not args.standalone,
        allowed_prometheus_urls=tuple(args.allow_prometheus_url) if args.allow_prometheus_url else None,
        peering_lifetime_s=args.peering_lifetime, prometheus_ca_file=args.prometheus_ca_file,
        prometheus_token_file=args.prometheus_token_file)
    priority = args.priority if args.priority is not None else 1 + secrets.randbelow(1_000_000_000)
    if not args.standalone:
        _ensure_peering(client.CustomObjectsApi(handlers.kubernetes_client()), args.peering)
    start_http_server(args.metrics_port, addr=args.bind, registry=REGISTRY)
    kopf.run(clusterwide=True, standalone=args.standalone, peering_name=None if args.standalone else args.peering,
             liveness_endpoint=f"http://{args.bind}:{args.health_port}/healthz", priority=priority,
             memo=config.memo())
    return 0


def _ensure_peering(api, name: str) -> None:
    """Kopf's ClusterKopfPeering object for the replicas to meet in (the CRD ships in crds/; the Helm
    chart creates the object, so the operator only needs to read it there)."""
    from kubernetes import client

    try:
        api.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
        return
    except client.ApiException as exc:
        if exc.status != 404:
            raise SystemExit(f"gridshift: cannot read ClusterKopfPeering {name!r}: {exc.status} {exc.reason}") from exc
    try:
        api.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings",
                                         {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                          "metadata": {"name": name}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise SystemExit(f"gridshift: cannot create ClusterKopfPeering {name!r}: {exc.status} {exc.reason} "
                             "(apply crds/ first, or pass --standalone)") from exc


def _until_interrupted(stop: Callable[[], None]) -> int:
    """Serve in the background threads until Ctrl-C (or SIGTERM, which Python turns into an exit)."""
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop()
    return 0


def _cmd_battery(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from gridshift.devcluster.battery_sim import SunSpecBatterySimulator
    from gridshift.ess.physics import BatteryPhysics

    try:
        physics = BatteryPhysics(args.capacity_wh, args.max_charge_w, args.max_discharge_w,
                                 round_trip_efficiency=args.efficiency, soc_fraction=args.soc, soh_fraction=args.soh)
    except ValueError as exc:
        raise SystemExit(f"gridshift dev battery: {exc}") from exc
    sim = SunSpecBatterySimulator(physics, name=args.name, host=args.bind, port=args.port, unit_id=args.unit_id,
                                  reserve_min_pct=args.reserve_min_pct).start()
    print(f"SunSpec battery {args.name!r} on modbus://{args.bind}:{sim.port} unit {args.unit_id} "
          f"(models 1, 802, 124 at {sim.base})", flush=True)
    if args.metrics_port:
        registry = CollectorRegistry()
        registry.register(sim)
        start_http_server(args.metrics_port, addr=args.bind, registry=registry)
        print(f"metrics on http://{args.bind}:{args.metrics_port}/metrics", flush=True)
    return _until_interrupted(sim.stop)


def _cmd_twin(args: argparse.Namespace) -> int:
    from gridshift.devcluster.cluster import api_client_for
    from gridshift.devcluster.twin import Twin

    twin = Twin(api_client_for(args.kubeconfig), trace_dir=Path(args.trace_dir) if args.trace_dir else None,
                idle_w=args.idle_watts).serve(args.port, args.bind)
    print(f"telemetry twin on http://{args.bind}:{args.port}/metrics", flush=True)
    return _until_interrupted(twin.stop)


def _cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from gridshift.devcluster.binaries import BinaryError, ensure_prometheus
    from gridshift.devcluster.cluster import DevCluster, api_client_for
    from gridshift.devcluster.controlplane import ClusterError

    if args.surge_at >= args.duration:
        raise SystemExit(f"gridshift: --surge-at ({args.surge_at:g}) must come before the end (--duration "
                         f"{args.duration:g})")
    if not _preflight(control_plane=args.kubeconfig is None, prometheus=True, extras=("plot", "devcluster")):
        return 1
    from gridshift.devcluster.demo import run_demo

    try:
        ensure_prometheus(log=_stderr)
    except BinaryError as exc:
        print(f"gridshift: {exc}", file=sys.stderr)
        return 1
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        info = DevCluster.status()
        if info is None:
            try:
                kubeconfig = str(DevCluster.up(log=_stderr).kubeconfig)
            except (BinaryError, ClusterError, TimeoutError) as exc:
                print(f"gridshift: {exc}", file=sys.stderr)
                return 1
        else:
            kubeconfig = info["kubeconfig"]
    trace_dir = Path(args.trace_dir) if args.trace_dir else None
    if trace_dir is None and Path("../shared/data").is_dir():
        trace_dir = Path("../shared/data").resolve()
    workdir = Path(tempfile.mkdtemp(prefix="gridshift-demo-"))
    result = run_demo(api_client_for(kubeconfig), Path(kubeconfig), workdir, duration_s=args.duration,
                      surge_at_s=args.surge_at, trace_dir=trace_dir, out_png=Path(args.out),
                      print_fn=lambda line: print(line, flush=True))
    print(f"{len(result.actions)} actions; operator log in {workdir / 'operator.log'}")
    return 0


def _cmd_feasibility(args: argparse.Namespace) -> int:
    import json

    from gridshift.planner.feasibility import Move, assess
    from gridshift.planner.units import UnitError, parse_bitrate, parse_bytes, parse_duration, parse_power

    if not 0 <= args.margin < 1:
        print(f"gridshift feasibility: --margin must be a fraction in [0, 1), got {args.margin:g}", file=sys.stderr)
        return 2
    try:
        move = Move(
            checkpoint_bytes=parse_bytes(args.checkpoint, "--checkpoint"),
            bandwidth_bps=parse_bitrate(args.bandwidth, "--bandwidth"),
            window_s=parse_duration(args.window, "--window"),
            margin=args.margin,
            job_power_w=parse_power(args.job_power, "--job-power"),
            idle_power_w=parse_power(args.idle_power, "--idle-power") if args.idle_power else None,
            checkpoint_write_Bps=parse_bitrate(args.write_rate, "--write-rate") / 8,
            restore_read_Bps=parse_bitrate(args.read_rate, "--read-rate") / 8,
        )
    except (UnitError, ValueError) as exc:
        print(f"gridshift feasibility: {exc}", file=sys.stderr)
        return 2
    verdict = assess(move)
    if args.json:
        print(json.dumps({"move": move.__dict__, "verdict": verdict.as_dict()}, indent=2))
    else:
        print(verdict.explain())
    if args.plot:
        from gridshift.plots.feasibility import plot_domain

        print(f"wrote {plot_domain(move, verdict, Path(args.plot))}", file=sys.stderr)
    return 0 if verdict.feasible else 1


def _cmd_sim_migration(args: argparse.Namespace) -> int:
    import datetime as dt
    import json

    from gridshift.planner.units import UnitError, parse_bitrate, parse_bytes
    from gridshift.sim.migration import build_scenario, compare
    from gridshift.telemetry.grid import load_eia930
    from gridshift.telemetry.traces import TraceError

    sites = [s.strip() for s in args.sites.split(",") if s.strip()]
    if len(sites) < 2:
        raise SystemExit("gridshift sim migration: --sites: name at least two balancing authorities")
    try:
        start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise SystemExit(f"gridshift sim migration: --start: {exc}") from exc
    try:
        mixes = {s: load_eia930(Path(args.data) / f"{s}.csv") for s in sites}
        regimes = {}
        for spec in args.bandwidth:
            lo, _, hi = spec.partition("-")
            regimes[spec] = (parse_bitrate(lo, "--bandwidth"), parse_bitrate(hi or lo, "--bandwidth"))
        sizes = tuple(parse_bytes(v, "--checkpoint") for v in args.checkpoint.split("-", 1))
    except (OSError, TraceError, UnitError) as exc:
        raise SystemExit(f"gridshift sim migration: {exc}") from exc
    first = next(iter(mixes.values()))
    start_hour = int((start.timestamp() - first.times[0]) // 3600)
    results = {}
    for label, bandwidth in regimes.items():
        try:
            scn = build_scenario({s: m.variable_renewable for s, m in mixes.items()}, start_hour=start_hour,
                                 days=args.days, seed=args.seed, bandwidth_bps=bandwidth,
                                 checkpoint_bytes=(sizes[0], sizes[-1]))
        except ValueError as exc:
            raise SystemExit(f"gridshift sim migration: {exc}") from exc
        results[label] = compare(scn)
    if args.json:
        print(json.dumps({"sites": sites, "start": args.start, "days": args.days, "seed": args.seed,
                          "jobs": len(scn.jobs), "results": results}, indent=2, default=float))
    else:
        print(f"{len(scn.jobs)} jobs over {args.days} days from {args.start} at {', '.join(sites)}; "
              f"checkpoints {args.checkpoint}")
        for label, by_strategy in results.items():
            print(f"\nWAN {label}")
            print(f"{'strategy':<10} {'non-renewable kWh':>18} {'mean delay h':>13} {'moves':>6} {'aborted':>8}")
            for strategy, r in by_strategy.items():
                print(f"{strategy:<10} {r['nonrenewable_kwh']:>18.1f} {r['mean_delay_h']:>13.2f} {r['moves']:>6} "
                      f"{r['aborted_moves']:>8}")
    if args.plot:
        from gridshift.plots.migration import plot_comparison

        print(f"wrote {plot_comparison(results, Path(args.plot))}", file=sys.stderr)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    import json

    from gridshift.forecaster.runtime import Forecaster, ModelError
    from gridshift.planner.units import UnitError, parse_duration
    from gridshift.progress import text_progress
    from gridshift.sim import scenario as sc

    try:
        scn = sc.load(args.scenario)
        seconds = int(parse_duration(args.span, "--duration")) if args.span else scn.seconds
        strategies = args.strategies or scn.file.strategies
        traces = scn.job_traces(args.trace_dir)
        model = Forecaster.load(args.model) if "student" in strategies else None
    except (sc.ScenarioError, UnitError, ModelError) as exc:
        raise SystemExit(f"gridshift simulate: {exc}") from exc
    site = scn.site(traces, seconds=seconds)
    progress = None
    if not args.quiet and sys.stderr.isatty():
        bar = text_progress()
        progress = lambda label: lambda done, total: bar(label, done, total, "simulated s")  # noqa: E731
    run = sc.compare(scn, site, strategies, model, progress=progress)
    if progress is not None:
        print(file=sys.stderr)
    cap, setup, results = run.cap_w, run.setup, run.results
    summaries = {s: r.summary() for s, r in results.items()}
    if args.json:
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
        print(_table(rows))
    if args.plot:
        from gridshift.plots.simulation import plot_simulation

        grids = {s: r.grid_w for s, r in results.items()}
        print(f"wrote {plot_simulation(scn.file.name, cap, grids, summaries, Path(args.plot))}", file=sys.stderr)
    return 0


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridshift", description="Keep an AI data center inside its power budget."
    )
    parser.add_argument("--version", action="version", version=f"gridshift {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    crd = sub.add_parser("crd", help="print the CustomResourceDefinitions generated from the API types")
    crd.add_argument("--write", metavar="DIR", help="write one YAML file per CRD into DIR instead of printing")
    crd.add_argument("--reference", metavar="FILE", help="write the API reference page (Markdown) to FILE")
    crd.set_defaults(func=_cmd_crd)

    dev = sub.add_parser("dev", help="developer tools: a local Kubernetes control plane")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    cluster = dev_sub.add_parser("cluster", help="a real control plane on loopback with fake GPU nodes")
    cl_sub = cluster.add_subparsers(dest="cluster_command", required=True)

    up = cl_sub.add_parser("up", help="build (once) and start etcd, the control plane and kwok GPU nodes")
    up.add_argument("--dir", help="cluster state directory (default ~/.cache/gridshift/clusters/default)")
    up.add_argument("--nodes", type=int, default=4, help="GPU nodes per site (default 4)")
    up.add_argument("--gpus-per-node", type=int, default=8, help="nvidia.com/gpu per node (default 8)")
    up.add_argument("--racks", type=int, default=2, help="racks per site (default 2)")
    up.add_argument("--sites", default="site-a", help="comma-separated site names (default site-a)")
    up.set_defaults(func=_cmd_cluster_up)

    down = cl_sub.add_parser("down", help="stop every process of the local cluster")
    down.add_argument("--dir", help="cluster state directory")
    down.set_defaults(func=_cmd_cluster_down)

    status = cl_sub.add_parser("status", help="say whether the local cluster runs and where")
    status.add_argument("--dir", help="cluster state directory")
    status.set_defaults(func=_cmd_cluster_status)

    fc = sub.add_parser("forecast", help="train, evaluate and plot the power forecaster")
    fc_sub = fc.add_subparsers(dest="forecast_command", required=True)
    train = fc_sub.add_parser("train", help="train teacher and distilled student on traces; write a model directory")
    train.add_argument("--data", nargs="+", required=True, metavar="PATH",
                       help="traces: nvidia-smi CSV, node CSV, timestamp,value CSV or Prometheus query_range JSON")
    train.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    train.add_argument("--step", type=float, default=1.0, help="resampling step in seconds (default 1)")
    train.add_argument("--window", type=int, default=120, help="look-back window in steps (default 120)")
    train.add_argument("--horizons", default="5,10,30", help="forecast horizons in seconds (default 5,10,30)")
    train.add_argument("--max-gap", type=float, default=5.0, help="longest gap (s) bridged; longer ones split")
    train.add_argument("--teacher-epochs", type=int, default=60)
    train.add_argument("--student-epochs", type=int, default=300)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    train.add_argument("--no-distill", nargs="*", default=[], metavar="TERM",
                       choices=["point", "feature", "multiscale", "spectral"],
                       help="switch distillation terms off for the main student")
    train.add_argument("--ablations", action="store_true", help="also train a student without each term")
    train.add_argument("--per-gpu", action="store_true", help="also train on each GPU's own series")
    train.add_argument("--no-teacher", action="store_true", help="do not export the teacher (smaller directory)")
    train.add_argument("--prune", type=float, default=0.0, metavar="FRACTION",
                       help="also export student_pruned with this fraction of weights zeroed")
    train.add_argument("--quantize", action="store_true", help="also export student_int8 (dynamic int8)")
    train.set_defaults(func=_cmd_forecast_train)

    ev = fc_sub.add_parser("evaluate", help="score a model and the baselines on traces")
    ev.add_argument("--model", default="default", help="model directory, or 'default' (bundled)")
    ev.add_argument("--data", nargs="+", required=True, metavar="PATH")
    ev.add_argument("--max-gap", type=float, default=5.0)
    ev.add_argument("--confidence", type=float, default=0.9, help="upper-bound level scored for coverage")
    ev.add_argument("--cap", type=float, metavar="W", help="cap for the peak-detection scores "
                    "(default: each scored series' 90th percentile)")
    ev.add_argument("--skip-bad-files", action="store_true",
                    help="warn about an unreadable trace file (garbage, NUL bytes) and go on with the others "
                         "(default: stop, naming it)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=_cmd_forecast_evaluate)

    pl = fc_sub.add_parser("plot", help="PNG of forecast versus actual and error by horizon")
    pl.add_argument("--model", default="default")
    pl.add_argument("--data", required=True, metavar="PATH")
    pl.add_argument("--out", required=True, metavar="PNG")
    pl.add_argument("--max-gap", type=float, default=5.0)
    pl.add_argument("--confidence", type=float, default=0.9)
    pl.set_defaults(func=_cmd_forecast_plot)

    demo = sub.add_parser("demo", help="the closed loop on a local cluster: surge, forecast, battery over Modbus, "
                                       "recharge off-peak")
    demo.add_argument("--kubeconfig", help="use this cluster (default: the local dev cluster, started if needed)")
    demo.add_argument("--duration", type=float, default=300.0, help="seconds to run (default 300)")
    demo.add_argument("--surge-at", type=float, default=120.0,
                      help="second at which the fine-tuning surge starts (default 120: after 2 min of history)")
    demo.add_argument("--out", default="gridshift-demo.png", help="PNG timeline to write (default gridshift-demo.png)")
    demo.add_argument("--trace-dir", help="folder of real traces (default ../shared/data when present)")
    demo.set_defaults(func=_cmd_demo)

    fe = sub.add_parser("feasibility", help="is moving a job into a renewable window worth it? (exit 0: yes, 1: no)")
    fe.add_argument("--checkpoint", required=True, help="checkpoint size, e.g. 80GiB, 1.5TB")
    fe.add_argument("--bandwidth", required=True, help="WAN bandwidth, e.g. 10Gbit/s, 400Mbps, 1GB/s")
    fe.add_argument("--window", required=True, help="remaining renewable window, e.g. 3h, 45min, 1h30min")
    fe.add_argument("--job-power", default="6kW", help="the job's power while running (default 6kW)")
    fe.add_argument("--idle-power", help="power held while the job is stopped for the move (default 25%% of job)")
    fe.add_argument("--margin", type=float, default=0.2, help="the move must fit in (1 - margin) of the window")
    fe.add_argument("--write-rate", default="2GB/s", help="checkpoint write rate at the source (default 2GB/s)")
    fe.add_argument("--read-rate", default="2GB/s", help="checkpoint read rate at the destination (default 2GB/s)")
    fe.add_argument("--json", action="store_true", help="print the move and the verdict as JSON")
    fe.add_argument("--plot", metavar="PNG", help="also draw the feasibility domain")
    fe.set_defaults(func=_cmd_feasibility)

    sim = sub.add_parser("sim", help="trace-driven simulations")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    mig = sim_sub.add_parser("migration", help="stay vs energy-only chasing vs feasibility-aware migration "
                                               "on EIA-930 wind and solar")
    mig.add_argument("--data", default="../shared/data/grid/eia-930-2022-hourly",
                     help="folder of EIA-930 {BA}.csv files (default ../shared/data/grid/eia-930-2022-hourly)")
    mig.add_argument("--sites", default="CISO,ERCO,MISO", help="balancing authorities, one site each")
    mig.add_argument("--start", default="2022-06-01", help="first day jobs may arrive (UTC date)")
    mig.add_argument("--days", type=int, default=7)
    mig.add_argument("--seed", type=int, default=0)
    mig.add_argument("--bandwidth", nargs="+", default=["1Gbit/s-100Gbit/s", "100Mbit/s-1Gbit/s"],
                     help="WAN regimes, each LOW-HIGH (log-uniform per site pair)")
    mig.add_argument("--checkpoint", default="1GB-1TB", help="checkpoint sizes LOW-HIGH (log-uniform)")
    mig.add_argument("--json", action="store_true")
    mig.add_argument("--plot", metavar="PNG")
    mig.set_defaults(func=_cmd_sim_migration)

    simu = sub.add_parser("simulate", help="peak shaving on a simulated site: every strategy on one scenario")
    simu.add_argument("--scenario", required=True, metavar="FILE|NAME",
                      help="a scenario YAML file, or a bundled one: training-64, mixed, synthetic-training")
    simu.add_argument("--strategies", nargs="+", choices=["none", "reactive", "persistence", "student", "oracle"],
                      help="strategies to run (default: the scenario's)")
    simu.add_argument("--duration", dest="span", help="simulate only this long, e.g. 2h (default: the scenario's)")
    simu.add_argument("--trace-dir", default="../shared/data",
                      help="folder the scenario's trace files are relative to (default ../shared/data; "
                           "not read by a scenario with only synthetic traces)")
    simu.add_argument("--model", default="default", help="forecaster model directory for student (default: bundled)")
    simu.add_argument("--json", action="store_true", help="print one JSON object with a block per strategy")
    simu.add_argument("--plot", metavar="PNG", help="also draw grid power against the cap and the costs")
    simu.add_argument("--quiet", action="store_true", help="no progress bar (none when stderr is no terminal)")
    simu.set_defaults(func=_cmd_simulate)

    op = sub.add_parser("operator", help="run the gridshift operator")
    op_sub = op.add_subparsers(dest="operator_command", required=True)
    run = op_sub.add_parser("run", help="watch PowerPolicies cluster-wide and keep each under its budget")
    run.add_argument("--prometheus-url", help="Prometheus for policies that set no spec.telemetry.prometheusUrl")
    run.add_argument("--prometheus-ca-file", metavar="FILE",
                     help="CA bundle to verify Prometheus's certificate with, for policies without "
                          "spec.telemetry.auth.secretRef (default: the system's trust store)")
    run.add_argument("--prometheus-token-file", metavar="FILE",
                     help="bearer token for Prometheus, re-read as it rotates (e.g. the pod's projected "
                          "ServiceAccount token for OpenShift's thanos-querier), for policies without a secretRef")
    run.add_argument("--allow-prometheus-url", action="append", metavar="BASE_URL",
                     help="a base URL a policy's spec.telemetry.prometheusUrl may name (repeat for more); with none "
                          "given any URL is allowed. The --prometheus-url is always allowed")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster credentials or $KUBECONFIG)")
    run.add_argument("--metrics-port", type=int, default=8080, help="port of /metrics (default 8080)")
    run.add_argument("--health-port", type=int, default=8081, help="port of the /healthz liveness probe")
    run.add_argument("--bind", default="0.0.0.0", help="address for /metrics and /healthz (default 0.0.0.0)")
    run.add_argument("--peering", default="gridshift", help="ClusterKopfPeering shared by the replicas")
    run.add_argument("--priority", type=int, default=None,
                     help="peering priority; the highest live replica acts, the others stand by (default: random, "
                          "because Kopf pauses every replica when two share a priority)")
    run.add_argument("--standalone", action="store_true", help="no peering: for a single replica")
    run.add_argument("--peering-lifetime", type=int, default=8, metavar="SECONDS",
                     help="how long a replica counts as alive after its last keep-alive (it sends one every 1-3 s); "
                          "a standby takes over this long after the active replica dies (default 8)")
    run.add_argument("--dry-run", action="store_true",
                     help="report every policy's actions without writing, whatever its spec.safety.dryRun says")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=_cmd_operator_run)

    twin = dev_sub.add_parser("twin", help="serve DCGM-style GPU power for the pods on kwok nodes; run batteries")
    twin.add_argument("--kubeconfig", required=True)
    twin.add_argument("--port", type=int, default=9400, help="port of /metrics (default 9400, as dcgm-exporter)")
    twin.add_argument("--bind", default="127.0.0.1")
    twin.add_argument("--trace-dir", help="folder that relative gridshift.io/power-trace paths start from")
    twin.add_argument("--idle-watts", type=float, default=60.0, help="power of a GPU no pod uses (default 60)")
    twin.set_defaults(func=_cmd_twin)

    bat = dev_sub.add_parser("battery", help="serve a simulated SunSpec battery (models 1, 802, 124) on Modbus TCP")
    bat.add_argument("--name", default="ess", help="label of its metrics (default ess)")
    bat.add_argument("--bind", default="127.0.0.1")
    bat.add_argument("--port", type=int, default=5020, help="Modbus TCP port (default 5020; 502 needs root)")
    bat.add_argument("--unit-id", type=int, default=1)
    bat.add_argument("--capacity-wh", type=float, default=100_000.0)
    bat.add_argument("--max-charge-w", type=float, default=50_000.0)
    bat.add_argument("--max-discharge-w", type=float, default=50_000.0)
    bat.add_argument("--efficiency", type=float, default=0.9, help="round-trip efficiency (default 0.9)")
    bat.add_argument("--soc", type=float, default=0.8, help="initial state of charge, 0 to 1 (default 0.8)")
    bat.add_argument("--soh", type=float, default=1.0, help="state of health, 0 to 1 (default 1)")
    bat.add_argument("--reserve-min-pct", type=float, default=10.0, help="the device's SoCRsvMin (default 10)")
    bat.add_argument("--metrics-port", type=int, default=0, help="serve ess_* gauges here (default: off)")
    bat.set_defaults(func=_cmd_battery)

    build = cl_sub.add_parser("build", help="only build (or find) the control-plane binaries; print their folder")
    build.add_argument("--prometheus", action="store_true",
                       help="also find Prometheus, or build it from its Go module when none is on PATH")
    build.add_argument("--check", action="store_true",
                       help="only check the prerequisites and estimate the build (exit 1 naming what is missing)")
    build.set_defaults(func=_cmd_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("nodes", "gpus_per_node", "racks", "window", "teacher_epochs", "student_epochs"):
        value = getattr(args, name, None)
        if isinstance(value, int) and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("duration", "surge_at"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value:g}")
    prune = getattr(args, "prune", 0.0)
    if prune and not 0 < prune < 1:
        parser.error(f"--prune must be a fraction between 0 and 1, got {prune}")
    if getattr(args, "step", 1.0) <= 0:
        parser.error(f"--step must be positive, got {args.step}")
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing.startswith("gridshift.devcluster") or missing.split(".")[0] == "cryptography":
            print("gridshift: the developer tools are not in this installation (the operator image leaves them "
                  "out): install gridshift from a source checkout with pip install '.[devcluster]'", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
