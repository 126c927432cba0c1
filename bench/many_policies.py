"""Benchmark one operator under many objects: N PowerPolicies and M Modbus batteries at once.

    python bench/many_policies.py                          # 40 policies, 10 batteries, period 5 s
    python bench/many_policies.py --policies 20 --batteries 4 --json out/many_policies.json

It starts its own local control plane (4 kwok GPU nodes), the telemetry twin and a real
Prometheus, M SunSpec battery simulators over Modbus TCP with an EnergyStorage (driver modbus)
each, and one standalone operator; then creates the N dry-run policies at once. Figures printed
(and written as JSON): seconds from creation to each policy's first status.lastPeriodTime and to
each battery's first state of charge in status (median and max, and in control periods), whether
every policy then keeps running its periods, and the seconds to delete each of 5 policies while
the others run (median and max). Issue 28's target at 40 and 10 on this 2-core machine: every one
has a status within 2 periods; every deletion completes within 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import report, start_lab
from kubernetes import client

from gridshift.api.times import parse_rfc3339
from gridshift.devcluster.battery_sim import SunSpecBatterySimulator
from gridshift.devcluster.lab import OperatorProcess, policy
from gridshift.ess.physics import BatteryPhysics

SITE = "many"
GROUP, VERSION = "gridshift.io", "v1alpha1"


def _ess(name: str, port: int) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "EnergyStorage", "metadata": {"name": name},
            "spec": {"driver": "modbus", "capacityWattHours": 20_000, "maxDischargeWatts": 10_000,
                     "maxChargeWatts": 5_000, "setpointWatts": 0,
                     "modbus": {"host": "127.0.0.1", "port": port, "revertSeconds": 30, "pollSeconds": 5}}}


def _spread(values: list[float], period: float) -> dict[str, float]:
    return {"median_s": round(statistics.median(values), 2), "max_s": round(max(values), 2),
            "max_periods": round(max(values) / period, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=int, default=40)
    parser.add_argument("--batteries", type=int, default=10)
    parser.add_argument("--period", type=int, default=5)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if args.policies < 6 or args.batteries < 0 or args.period < 1:
        parser.error("--policies >= 6, --batteries >= 0, --period >= 1")

    result: dict[str, object] = {"policies": args.policies, "batteries": args.batteries, "period_s": args.period}
    with tempfile.TemporaryDirectory(prefix="gridshift-many-") as tmp, contextlib.ExitStack() as stack:
        cluster, api, prom, _ = start_lab(stack, Path(tmp), SITE)
        custom = client.CustomObjectsApi(api)
        sims = [SunSpecBatterySimulator(BatteryPhysics(20_000, 5_000, 10_000, soc_fraction=0.6)).start()
                for _ in range(args.batteries)]
        for sim in sims:
            stack.callback(sim.stop)
        stack.callback(OperatorProcess(cluster.kubeconfig, prom.url, Path(tmp) / "operator.log").start().stop)
        names = [f"pp-{i:02d}" for i in range(args.policies)]
        batteries = [f"ess-{i:02d}" for i in range(args.batteries)]
        created: dict[str, float] = {}
        for name in names:
            custom.create_cluster_custom_object(GROUP, VERSION, "powerpolicies", policy(
                name, SITE, "default", prom.url, cap=1e6, trigger=9e5, dry_run=True, period=args.period))
            created[name] = time.time()
        for name, sim in zip(batteries, sims, strict=True):
            custom.create_cluster_custom_object(GROUP, VERSION, "energystorages", _ess(name, sim.port))
            created[name] = time.time()
        first: dict[str, float] = {}
        deadline = time.monotonic() + 10 * args.period + 60
        while len(first) < len(created) and time.monotonic() < deadline:
            for name in names:
                if name not in first:
                    status = custom.get_cluster_custom_object(GROUP, VERSION, "powerpolicies", name).get(
                        "status") or {}
                    # Seen, not stamped: lastPeriodTime has whole seconds only, so the poll that first sees
                    # it bounds the time from above (within the 0.5 s poll and the reads of one sweep).
                    if parse_rfc3339(status.get("lastPeriodTime")) is not None:
                        first[name] = time.time() - created[name]
            for name in batteries:
                if name not in first:
                    status = custom.get_cluster_custom_object(GROUP, VERSION, "energystorages", name).get(
                        "status") or {}
                    if status.get("socFraction") is not None:
                        first[name] = time.time() - created[name]
            time.sleep(0.5)
        missing = sorted(set(created) - set(first))
        result["without_status"] = missing
        result["policy_first_status"] = _spread([first[n] for n in names if n in first], args.period)
        if batteries:
            result["battery_first_status"] = _spread([first[n] for n in batteries if n in first], args.period)
        # Every policy keeps running: each one's lastPeriodTime moves within three periods.
        mark = {n: custom.get_cluster_custom_object(GROUP, VERSION, "powerpolicies", n)["status"]
                ["lastPeriodTime"] for n in names if n in first}
        time.sleep(3 * args.period)
        stuck = [n for n in mark if custom.get_cluster_custom_object(GROUP, VERSION, "powerpolicies", n)
                 ["status"]["lastPeriodTime"] == mark[n]]
        result["stuck_policies"] = stuck
        deletions: list[float] = []
        for name in names[:5]:
            started = time.monotonic()
            custom.delete_cluster_custom_object(GROUP, VERSION, "powerpolicies", name)
            while any(o["metadata"]["name"] == name for o in custom.list_cluster_custom_object(
                    GROUP, VERSION, "powerpolicies")["items"]) and time.monotonic() - started < 60:
                time.sleep(0.1)
            deletions.append(time.monotonic() - started)
        result["deletion"] = {"median_s": round(statistics.median(deletions), 2),
                              "max_s": round(max(deletions), 2)}
    report(result, args.json, width=24)
    return 0


if __name__ == "__main__":
    sys.exit(main())
