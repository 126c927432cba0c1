"""Benchmark the operator at fleet scale: control-period time and operator memory for one or more
PowerPolicies over many kwok GPU nodes and workloads.

    python bench/operator_scale.py                       # 1,000 nodes, 2,000 workloads, one policy
    python bench/operator_scale.py --nodes 250 --workloads 500 --policies 10 --json out/operator_scale.json

It starts its own local control plane with the nodes, creates the workloads (three quarters
1-GPU inference Deployments, one quarter 4-GPU training Jobs) and waits for their pods, runs the
telemetry twin (listing nodes and pods every 5 s, as a fleet's DCGM exporters would each report
their own node) and a real Prometheus (5 s scrape), then the operator as its own process with
``--policies`` dry-run policies over the same nodes and workloads, each with its trigger below the
load, so every period of every policy plans over the whole inventory.
Figures printed (and written as JSON):
- setup: seconds to register nodes, to create workloads, to get every pod Running;
- loop: mean, p50, p95 and max of the periods' `gridshift_loop_duration_seconds` over every
  policy's measured periods (one period's telemetry, inventory, forecast, plan and dry-run
  actuation, without the status write), read period by period from the operator's metrics;
- memory: the operator process's peak (VmHWM) and current RSS in MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import proc_status_mib, report
from kubernetes import client

from gridshift.devcluster.cluster import DevCluster, wait_for_default_service_account
from gridshift.devcluster.controlplane import NodePool, free_port
from gridshift.devcluster.lab import OperatorProcess, inference, policy, training
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.devcluster.twin import Twin

SITE = "scale"
NAMESPACE = "scale"


def _loop_stats(text: str, name: str) -> tuple[int, float]:
    count = re.search(rf'gridshift_loop_duration_seconds_count{{policy="{name}"}} (\S+)', text)
    total = re.search(rf'gridshift_loop_duration_seconds_sum{{policy="{name}"}} (\S+)', text)
    return (int(float(count.group(1))) if count else 0), (float(total.group(1)) if total else 0.0)


def _quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--workloads", type=int, default=2000)
    parser.add_argument("--periods", type=int, default=10, help="control periods to measure per policy (default 10)")
    parser.add_argument("--policies", type=int, default=1, help="dry-run policies over the same fleet (default 1)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if args.nodes < 1 or args.workloads < 4 or args.periods < 1 or args.policies < 1:
        parser.error("--nodes >= 1, --workloads >= 4, --periods >= 1 and --policies >= 1")

    result: dict[str, object] = {"nodes": args.nodes, "workloads": args.workloads, "policies": args.policies}
    with tempfile.TemporaryDirectory(prefix="gridshift-scale-") as tmp:
        t0 = time.monotonic()
        with contextlib.ExitStack() as stack:  # everything started is stopped, last first
            cluster = DevCluster.up(directory=Path(tmp) / "cluster",
                                    pools=[NodePool(count=args.nodes, gpus_per_node=8, site=SITE, racks=10)],
                                    log=lambda m: print("  " + m, flush=True))
            stack.callback(cluster.down_now)
            result["cluster_up_s"] = round(time.monotonic() - t0, 1)
            api = cluster.api_client()
            core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            wait_for_default_service_account(api, NAMESPACE)
            t0 = time.monotonic()
            jobs = args.workloads // 4
            for i in range(args.workloads - jobs):
                apps.create_namespaced_deployment(NAMESPACE, inference(f"infer-{i:04d}", SITE, 1, 300, priority=i % 5))
            for i in range(jobs):
                batch.create_namespaced_job(NAMESPACE, training(f"train-{i:04d}", SITE, 1, 4, 600, priority=i % 3))
            result["create_workloads_s"] = round(time.monotonic() - t0, 1)
            print(f"created {args.workloads} workloads in {result['create_workloads_s']} s", flush=True)
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                running = len(core.list_namespaced_pod(NAMESPACE, field_selector="status.phase=Running").items)
                if running >= args.workloads:
                    break
                print(f"  {running}/{args.workloads} pods running", flush=True)
                time.sleep(10)
            result["pods_running_s"] = round(time.monotonic() - t0, 1)

            port = free_port()
            # Listing a thousand nodes and their pods at every scrape would outlast the 5 s scrape.
            stack.callback(Twin(api, refresh_s=5.0).serve(port).stop)
            prom = LocalPrometheus(Path(tmp) / "prometheus", [f"127.0.0.1:{port}"], scrape_interval_s=5).start()
            stack.callback(prom.stop)
            operator = OperatorProcess(cluster.kubeconfig, prom.url, Path(tmp) / "operator.log").start()
            stack.callback(operator.stop)
            names = [f"scale-{k}" for k in range(args.policies)]
            for name in names:
                doc = policy(name, SITE, NAMESPACE, prom.url, cap=1e6, trigger=1e5, dry_run=True, period=5,
                             maxActionsPerPeriod=100)
                doc["spec"]["telemetry"]["staleAfterSeconds"] = 30
                client.CustomObjectsApi(api).create_cluster_custom_object("gridshift.io", "v1alpha1",
                                                                          "powerpolicies", doc)
            # Wait for every policy's first two periods, then measure the next ones, one
            # by one: the count and sum of the histogram read every half second (a period that ends
            # between two reads with another is measured as their mean).
            deadline = time.monotonic() + 300
            while (min(_loop_stats(operator.metrics(), n)[0] for n in names) < 2
                   and time.monotonic() < deadline):
                time.sleep(1)
            text = operator.metrics()
            last = {n: _loop_stats(text, n) for n in names}
            samples: dict[str, list[float]] = {n: [] for n in names}
            while (min(len(s) for s in samples.values()) < args.periods
                   and time.monotonic() < deadline + 600 + 30 * args.periods):
                time.sleep(0.5)
                text = operator.metrics()
                for n in names:
                    count, total = _loop_stats(text, n)
                    if count > last[n][0]:
                        mean = (total - last[n][1]) / (count - last[n][0])
                        samples[n].extend([mean] * (count - last[n][0]))
                        last[n] = (count, total)
            periods = [v for s in samples.values() for v in s]
            assert operator.proc is not None
            result.update({
                "loop_mean_s": round(sum(periods) / max(len(periods), 1), 3),
                "loop_p50_s": round(_quantile(periods, 0.5), 3),
                "loop_p95_s": round(_quantile(periods, 0.95), 3),
                "loop_max_s": round(max(periods, default=0.0), 3),
                "periods_measured": len(periods),
                "operator_peak_rss_mib": round(proc_status_mib(operator.proc.pid), 1),
                "operator_rss_mib": round(proc_status_mib(operator.proc.pid, "VmRSS"), 1),
            })
            status = client.CustomObjectsApi(api).get_cluster_custom_object(
                "gridshift.io", "v1alpha1", "powerpolicies", names[0]).get("status", {})
            ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
            result["policy_ready_message"] = ready.get("message", "")
            result["policies_ready"] = ready.get("status") == "True"
            if not result["policies_ready"]:
                # e.g. the twin's scrape timed out on a loaded machine: a period without telemetry stops
                # early, so these figures would not cover the whole period.
                print(f"WARNING: {names[0]} is not Ready ({ready.get('reason')}): the periods measured are "
                      "not full control periods", flush=True)
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
