"""Benchmark failover: how long a policy goes uncontrolled when the active operator replica is
SIGKILLed (a node dying under it), with two replicas in one ClusterKopfPeering.

    python bench/failover.py                       # 3 trials, period 5 s, --peering-lifetime 8
    python bench/failover.py --trials 5 --period 2 --lifetime 6 --json out/failover.json

It starts its own local control plane (4 kwok GPU nodes), the telemetry twin and a real
Prometheus, a standby replica, and one dry-run PowerPolicy. Each trial starts a replica with a
higher peering priority than the one now active, waits until that one runs the policy's periods
(its /metrics count them), SIGKILLs it, and times until the surviving replica runs a period
(again by its /metrics). Figures printed (and written as JSON): each trial's takeover in seconds
and in control periods, and their maximum. Issue 28's target: at most 2 periods.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import start_lab, write_json
from kubernetes import client

from gridshift.devcluster.cluster import wait_for_default_service_account
from gridshift.devcluster.lab import OperatorProcess, policy

SITE = "failover"
NAME = "failover"


def periods_run(operator: OperatorProcess) -> int:
    try:
        text = operator.metrics()
    except OSError:
        return 0
    found = re.search(rf'gridshift_loop_duration_seconds_count{{policy="{NAME}"}} (\S+)', text)
    return int(float(found.group(1))) if found else 0


def wait_until(check, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit(f"failover: timed out after {timeout:.0f} s waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--period", type=int, default=5, help="the policy's spec.safety.periodSeconds")
    parser.add_argument("--lifetime", type=int, default=8, help="the replicas' --peering-lifetime")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if args.trials < 1 or args.period < 1 or args.lifetime < 3:
        parser.error("--trials >= 1, --period >= 1, --lifetime >= 3")

    result: dict[str, object] = {"period_s": args.period, "peering_lifetime_s": args.lifetime, "trials": []}
    with tempfile.TemporaryDirectory(prefix="gridshift-failover-") as tmp, contextlib.ExitStack() as stack:
        cluster, api, prom, _ = start_lab(stack, Path(tmp), SITE)
        client.CoreV1Api(api).create_namespace({"metadata": {"name": SITE}})
        wait_for_default_service_account(api, SITE)

        def replica(priority: int) -> OperatorProcess:
            proc = OperatorProcess(cluster.kubeconfig, prom.url, Path(tmp) / f"operator-{priority}.log",
                                   peering_priority=priority,
                                   extra_args=("--peering-lifetime", str(args.lifetime))).start()
            stack.callback(proc.stop)
            return proc

        standby = replica(10)
        client.CustomObjectsApi(api).create_cluster_custom_object("gridshift.io", "v1alpha1", "powerpolicies",
                                                                  policy(NAME, SITE, SITE, prom.url, cap=1e6,
                                                                         trigger=9e5, dry_run=True,
                                                                         period=args.period))
        wait_until(lambda: periods_run(standby) > 0, 120, "the first replica's first period")
        for trial in range(args.trials):
            active = replica(20 + trial)
            wait_until(lambda a=active: periods_run(a) > 0, 120, f"trial {trial}: the new replica to take over")
            time.sleep(2 * args.period)
            before = periods_run(standby)
            killed = time.monotonic()
            active.kill()
            took = wait_until(lambda n=before: periods_run(standby) > n, 120,
                              f"trial {trial}: the standby to resume") - killed
            row = {"trial": trial, "takeover_s": round(took, 1), "periods": round(took / args.period, 2)}
            result["trials"].append(row)  # type: ignore[union-attr]
            print(f"trial {trial}: the standby ran a period {took:.1f} s ({took / args.period:.1f} periods) "
                  "after the active replica was killed", flush=True)
        takeovers = [r["takeover_s"] for r in result["trials"]]  # type: ignore[union-attr]
        result["max_takeover_s"] = max(takeovers)
        result["max_periods"] = round(max(takeovers) / args.period, 2)
    print(f"max takeover: {result['max_takeover_s']} s = {result['max_periods']} periods of {args.period} s")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
