"""Shared by the benchmark scripts (run as `python bench/NAME.py`, so this folder is on sys.path)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import NamedTuple

from kubernetes import client

from gridshift.devcluster.cluster import DevCluster
from gridshift.devcluster.controlplane import NodePool, free_port
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.devcluster.twin import Twin


def write_json(path: str | None, result: object) -> None:
    """Write ``result`` as indented JSON to ``path`` (folders created) and say so; no-op without a path."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")


def proc_status_mib(pid: int, field: str = "VmHWM") -> float:
    """A memory field of /proc/PID/status in MiB: peak resident (VmHWM, the default) or current (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(result: dict[str, object], path: str | None, width: int = 26) -> None:
    """Print each figure as ``key: value``, then write them all as JSON to ``path``."""
    for key, value in result.items():
        print(f"{key + ':':{width}}{value}")
    write_json(path, result)


class Lab(NamedTuple):
    cluster: DevCluster
    api: client.ApiClient
    prometheus: LocalPrometheus
    twin: Twin


def start_lab(stack: contextlib.ExitStack, directory: Path, site: str, nodes: int = 4,
              scrape_interval_s: int = 1, twin_refresh_s: float | None = None) -> Lab:
    """A local control plane with ``nodes`` kwok GPU nodes of ``site``, the telemetry twin (listing the
    pods every ``twin_refresh_s`` in the background, or at each scrape) and a real Prometheus scraping
    it; each is stopped when ``stack`` closes."""
    cluster = DevCluster.up(directory=directory / "cluster",
                            pools=[NodePool(count=nodes, gpus_per_node=8, site=site, racks=1)],
                            log=lambda m: print("  " + m, flush=True))
    stack.callback(cluster.down_now)
    api = cluster.api_client()
    port = free_port()
    twin = Twin(api, refresh_s=twin_refresh_s).serve(port)
    stack.callback(twin.stop)
    prom = LocalPrometheus(directory / "prometheus", [f"127.0.0.1:{port}"], scrape_interval_s=scrape_interval_s)
    stack.callback(prom.start().stop)
    return Lab(cluster, api, prom, twin)
