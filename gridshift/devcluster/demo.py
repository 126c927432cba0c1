"""`gridshift demo`: the whole loop on this machine, in a few minutes.

A site of four kwok GPU nodes runs two inference Deployments and a protected pretraining Job
(its GPUs replay a real H100 trace when ../shared/data is there), and a PowerPolicy (not dry-run)
caps it at 10 kW. Behind it stands a 1.5 kWh battery that speaks SunSpec over Modbus TCP (the
battery simulator, a real pymodbus server); the operator drives it through an EnergyStorage with
``driver: modbus``. The telemetry twin turns the pods into DCGM power, a real Prometheus scrapes
it, the operator runs as its own process. The tariff is on-peak until shortly after the surge.

Midway a fine-tuning Job surges the site past the cap; the battery alone covers it (it is rated
for the whole forecast shortfall) and the workloads are untouched. Off-peak, the battery recharges
toward its 80% target only once the surge is ten minutes behind it (a charge must fit under the
highest load of the last ten minutes, planner.charging.LOOKBACK_S). A live table shows each step
(the state of charge falling); a PNG timeline is written at the end.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client

from gridshift.devcluster.battery_sim import SunSpecBatterySimulator
from gridshift.devcluster.cluster import wait_for_default_service_account
from gridshift.devcluster.controlplane import free_port
from gridshift.devcluster.lab import (
    CheckpointSidecar,
    OperatorProcess,
    delete_site,
    force_delete,
    inference,
    new_site,
    policy,
    prom_query,
    prom_range,
    training,
)
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.devcluster.twin import Twin
from gridshift.ess.physics import BatteryPhysics
from gridshift.plots import pyplot, save

NAMESPACE = "gridshift-demo"
POLICY = "demo-site"
BATTERY = "demo-ess"
CAP_W, TRIGGER_W = 10_000.0, 9_000.0
# The battery: rated above the largest shortfall the clipped forecast can show (32 GPUs x 600 W - trigger).
CAPACITY_WH, DISCHARGE_W, CHARGE_W, TARGET = 1_500.0, 15_000.0, 6_000.0, 0.8
PRETRAIN_TRACE = "gpu-power/h100-8gpu-llm-training/run-2025-07-27T00-34-per-gpu.csv"


@dataclass
class Row:
    t: float
    measured_w: float | None
    forecast_w: float | None
    battery_w: float     # measured at the battery, + discharging
    soc: float | None
    phase: str
    tariff: str
    action: str
    endurance_s: float | None = None  # status.batteryEnduranceSeconds: unset until the battery has discharged

    @property
    def grid_w(self) -> float | None:
        """What the grid supplies: the GPUs' draw less the battery's discharge (plus its charge)."""
        return None if self.measured_w is None else self.measured_w - self.battery_w


@dataclass
class DemoResult:
    rows: list[Row] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    png: Path | None = None


def _fmt(value: float | None, width: int = 8) -> str:
    return f"{value:>{width}.0f}" if value is not None else f"{'-':>{width}}"


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def run_demo(api: client.ApiClient, kubeconfig: Path, workdir: Path, *, duration_s: float = 300.0,
             surge_at_s: float = 120.0, surge_s: int = 60, trace_dir: Path | None = None, out_png: Path | None = None,
             print_fn: Callable[[str], None] = print) -> DemoResult:
    workdir.mkdir(parents=True, exist_ok=True)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
    site = new_site(api, count=4, prefix="demo")
    battery = SunSpecBatterySimulator(BatteryPhysics(CAPACITY_WH, CHARGE_W, DISCHARGE_W, soc_fraction=TARGET),
                                      name=BATTERY, reserve_min_pct=10.0).start()
    twin_port = free_port()
    twin = Twin(api, trace_dir=trace_dir).serve(twin_port, extra=(battery,))
    prom = LocalPrometheus(workdir / "prometheus", [f"127.0.0.1:{twin_port}"]).start()
    operator = OperatorProcess(kubeconfig, prom.url, workdir / "operator.log")
    sidecar = CheckpointSidecar(batch, NAMESPACE, "finetune")
    result = DemoResult()
    started = time.time()
    # On-peak from now until a little after the surge: no recharging before then.
    off_peak_at = started + surge_at_s + surge_s + 5
    try:
        _reset(core, custom)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        wait_for_default_service_account(api, NAMESPACE)
        apps.create_namespaced_deployment(NAMESPACE, inference("chat", site.name, 4, 300, priority=10,
                                                               min_replicas=2))
        apps.create_namespaced_deployment(NAMESPACE, inference("embed", site.name, 4, 300, priority=1,
                                                               min_replicas=1))
        real = trace_dir is not None and (trace_dir / PRETRAIN_TRACE).exists()
        batch.create_namespaced_job(NAMESPACE, training("pretrain", site.name, 2, 4, 450, protected=True,
                                                        trace=PRETRAIN_TRACE if real else None,
                                                        trace_offset_s=115))  # skip the trace's idle start
        custom.create_cluster_custom_object("gridshift.io", "v1alpha1", "energystorages", {
            "apiVersion": "gridshift.io/v1alpha1", "kind": "EnergyStorage", "metadata": {"name": BATTERY},
            "spec": {"driver": "modbus", "capacityWattHours": CAPACITY_WH, "maxDischargeWatts": DISCHARGE_W,
                     "maxChargeWatts": CHARGE_W, "reserveFraction": 0.1,
                     "modbus": {"host": "127.0.0.1", "port": battery.port, "revertSeconds": 10, "pollSeconds": 1}}})
        doc = policy(POLICY, site.name, NAMESPACE, prom.url, cap=CAP_W, trigger=TRIGGER_W, dry_run=False,
                     ladder=["battery", "scaleDown", "suspend"], period=5, cooldownSeconds=10,
                     restoreRampWattsPerMinute=30000)
        doc["spec"]["storage"] = {"energyStorageRef": BATTERY, "reserveFraction": 0.2, "chargeTargetFraction": TARGET,
                                  "minDwellSeconds": 10}
        doc["spec"]["tariff"] = {"timeZone": "UTC", "peakWindows": [
            {"start": _clock(started - 60), "end": _clock(math.ceil(off_peak_at))}]}
        operator.start()
        sidecar.start()
        custom.create_cluster_custom_object("gridshift.io", "v1alpha1", "powerpolicies", doc)
        print_fn(f"site {site.name}: {len(site.nodes)} nodes x 8 GPUs; cap {CAP_W:.0f} W, trigger {TRIGGER_W:.0f} W; "
                 f"pretraining {'replays ' + PRETRAIN_TRACE if real else 'draws 450 W per GPU'}")
        print_fn(f"battery: {CAPACITY_WH:.0f} Wh SunSpec over Modbus TCP at 127.0.0.1:{battery.port}; tariff on-peak "
                 f"until t={off_peak_at - started:.0f} s, then recharging toward {TARGET:.0%}")
        print_fn(f"{'t(s)':>5} {'GPUs W':>8} {'battery':>8} {'grid W':>8} {'forecast':>8} {'cap':>8} {'SoC':>6} "
                 f"{'tariff':<7} {'phase':<10} action")
        surged = False
        seen = 0
        while (elapsed := time.time() - started) < duration_s:
            if not surged and elapsed >= surge_at_s:
                batch.create_namespaced_job(NAMESPACE, training("finetune", site.name, 2, 4, 700,
                                                                run_seconds=surge_s))
                surged = True
                print_fn(f"{elapsed:5.0f} -- surge: fine-tuning Job starts on 8 GPUs (700 W each, {surge_s} s) --")
            pp = custom.get_cluster_custom_object("gridshift.io", "v1alpha1", "powerpolicies", POLICY)
            status = pp.get("status") or {}
            ess = custom.get_cluster_custom_object("gridshift.io", "v1alpha1", "energystorages", BATTERY)
            records = status.get("recentActions", [])
            new = records[seen:] if len(records) >= seen else records
            seen = len(records)
            result.actions.extend(new)
            measured = prom_query(prom.url, site.power_query)
            ess_status = ess.get("status") or {}
            row = Row(elapsed, float(measured[0]["value"][1]) if measured else None, status.get("forecastPeakWatts"),
                      float(ess_status.get("powerWatts") or 0.0), ess_status.get("socFraction"),
                      status.get("phase", "Pending"), status.get("tariffPeriod") or "-",
                      "; ".join(f"{r['verb']} {r['target'].split('/')[-1]}" for r in new),
                      status.get("batteryEnduranceSeconds"))
            result.rows.append(row)
            soc = f"{row.soc:6.1%}" if row.soc is not None else f"{'-':>6}"
            print_fn(f"{row.t:5.0f} {_fmt(row.measured_w)} {row.battery_w:8.0f} {_fmt(row.grid_w)} "
                     f"{_fmt(row.forecast_w)} {CAP_W:8.0f} {soc} {row.tariff:<7} {row.phase:<10} {row.action}")
            time.sleep(5)
        series = prom_range(prom.url, site.power_query, started, time.time())
        if out_png is not None:
            result.png = _plot(series, result, started, out_png)
            print_fn(f"timeline written to {out_png}")
    finally:
        sidecar.stop.set()
        operator.stop()
        with contextlib.suppress(client.ApiException):
            _reset(core, custom)
        prom.stop()
        twin.stop()
        battery.stop()
        delete_site(api, site)
    return result


def _reset(core: client.CoreV1Api, custom: client.CustomObjectsApi) -> None:
    """Remove what an earlier demo left: the policy (and its finalizer), the battery, the namespace."""
    for plural, name in (("powerpolicies", POLICY), ("energystorages", BATTERY)):
        force_delete(custom, plural, name)
    with contextlib.suppress(client.ApiException):
        core.delete_namespace(NAMESPACE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespace(NAMESPACE)
        except client.ApiException:
            return
        time.sleep(0.5)


def _plot(series: list[tuple[float, float]], result: DemoResult, started: float, out: Path) -> Path:
    plt = pyplot()

    from gridshift.api.times import parse_rfc3339

    fig, ax = plt.subplots(figsize=(11, 4.5))
    if series:
        ax.plot([t - started for t, _ in series], [v for _, v in series], lw=1.2, label="GPU power (Prometheus)")
    grid = [(r.t, r.grid_w) for r in result.rows if r.grid_w is not None]
    if grid:
        ax.plot(*zip(*grid, strict=True), lw=1.6, color="black", label="grid draw (GPUs - battery)")
    fc = [(r.t, r.forecast_w) for r in result.rows if r.forecast_w is not None]
    if fc:
        ax.plot(*zip(*fc, strict=True), "--", lw=1, label="forecast upper bound")
    bat = [(r.t, r.battery_w) for r in result.rows]
    if any(b for _, b in bat):
        ax.step(*zip(*bat, strict=True), where="post", lw=1, label="battery power (+ discharging)")
    soc = [(r.t, r.soc) for r in result.rows if r.soc is not None]
    if soc:
        ax2 = ax.twinx()
        ax2.plot(*zip(*soc, strict=True), color="green", lw=1, ls="-.", label="state of charge")
        ax2.set_ylabel("state of charge")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="lower right", fontsize=8)
    ax.axhline(CAP_W, color="red", lw=1, label="cap")
    ax.axhline(TRIGGER_W, color="orange", lw=1, ls=":", label="trigger")
    for rec in result.actions:
        t = parse_rfc3339(rec["time"])
        if t is not None:
            ax.axvline(t - started, color="grey", lw=0.6, alpha=0.6)
            ax.annotate(f"{rec['verb']} {rec['target'].split('/')[-1]}", (t - started, CAP_W * 1.02),
                        rotation=90, fontsize=7, va="bottom")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("watts")
    ax.set_ylim(min(0.0, *(r.battery_w for r in result.rows)), CAP_W * 1.45)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("gridshift demo: site power, forecast and actions")
    return save(fig, out)
