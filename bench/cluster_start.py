"""Benchmark the local control plane: cold build time, warm start time, peak memory.

    python bench/cluster_start.py                # warm start (builds first if nothing is cached)
    python bench/cluster_start.py --cold         # also rebuild everything into a fresh cache,
                                                 # with an empty Go build cache (modules stay)
    python bench/cluster_start.py --json out/cluster_start.json

Figures printed:
- cold build: wall seconds per build step (Kubernetes, etcd, kwok, helm) from an empty Go build
  cache; with --cold measured now, otherwise as recorded when the binary cache was filled;
- warm start: seconds from launch to a ready API server (/readyz), to CRDs established, and to
  all GPU nodes Ready (the point where tests can start);
- peak memory: the high-water RSS (VmHWM) of each component and their sum, an upper bound
  of the cluster's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import proc_status_mib, write_json

from gridshift.devcluster import binaries
from gridshift.devcluster.cluster import api_client_for, install_crds
from gridshift.devcluster.controlplane import ControlPlane, NodePool
from gridshift.devcluster.nodes import register_gpu_nodes


def cold_build() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gridshift-cold-") as tmp:
        os.environ["GRIDSHIFT_CACHE_DIR"] = str(Path(tmp) / "cache")
        os.environ["GOCACHE"] = str(Path(tmp) / "gocache")
        os.environ.pop("GRIDSHIFT_K8S_BIN_DIR", None)
        started = time.monotonic()
        bins = binaries.ensure_binaries(log=lambda m: print("  " + m[:160], file=sys.stderr, flush=True))
        total = time.monotonic() - started
        steps = binaries.build_seconds(bins)
    os.environ.pop("GRIDSHIFT_CACHE_DIR")
    os.environ.pop("GOCACHE")
    return {**steps, "total": round(total, 1)}


def warm_start(nodes: int) -> dict[str, object]:
    bins = binaries.ensure_binaries()
    with tempfile.TemporaryDirectory(prefix="gridshift-bench-") as tmp:
        plane = ControlPlane(bins, Path(tmp) / "cluster")
        t0 = time.monotonic()
        state = plane.start()
        t_ready = time.monotonic() - t0
        try:
            api = api_client_for(plane.kubeconfig)
            install_crds(api)
            t_crds = time.monotonic() - t0
            register_gpu_nodes(api, [NodePool(count=nodes)])
            t_nodes = time.monotonic() - t0
            time.sleep(5)  # let controllers settle so the high-water marks include steady state
            hwm = {name: round(proc_status_mib(pid), 1) for name, pid in state.pids.items()}
        finally:
            plane.stop()
    return {
        "api_ready_s": round(t_ready, 2),
        "crds_established_s": round(t_crds, 2),
        "nodes_ready_s": round(t_nodes, 2),
        "gpu_nodes": nodes,
        "peak_rss_mib": hwm,
        "peak_rss_total_mib": round(sum(hwm.values()), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="rebuild every binary from scratch first")
    parser.add_argument("--nodes", type=int, default=8, help="kwok GPU nodes to register (default 8)")
    parser.add_argument("--runs", type=int, default=3, help="warm starts to time (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()

    result: dict[str, object] = {"kubernetes": binaries.KUBERNETES_VERSION, "cpus": os.cpu_count()}
    if args.cold:
        print("cold build (fresh binary cache, empty Go build cache) ...", flush=True)
        result["cold_build_s"] = cold_build()
        result["cold_build_measured"] = "now"
    else:
        result["cold_build_s"] = binaries.build_seconds(binaries.ensure_binaries())
        result["cold_build_measured"] = "when the binary cache was filled"
    runs = [warm_start(args.nodes) for _ in range(args.runs)]
    result["warm_start_runs"] = runs
    median = sorted(runs, key=lambda r: r["nodes_ready_s"])[len(runs) // 2]
    result["warm_start"] = median

    build = result["cold_build_s"]
    print(f"kubernetes {result['kubernetes']} on {result['cpus']} CPUs")
    if build:
        steps = ", ".join(f"{k} {v:.0f}s" for k, v in build.items())
        print(f"cold build ({result['cold_build_measured']}): {steps}")
    else:
        print("cold build: not recorded (binaries were given or built before timing existed); rerun with --cold")
    print(f"warm start, median of {len(runs)}: API ready {median['api_ready_s']:.1f}s, "
          f"CRDs {median['crds_established_s']:.1f}s, {median['gpu_nodes']} GPU nodes Ready "
          f"{median['nodes_ready_s']:.1f}s")
    rss = median["peak_rss_mib"]
    print("peak RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
          + f"; sum {median['peak_rss_total_mib']:.0f}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
