"""The telemetry twin: DCGM-style GPU power for the pods that really run on the kwok GPU nodes,
and a battery controller for EnergyStorage resources. Used by the tests and the demo to close
the loop: when the operator scales down or suspends, the pods go away and measured power falls.

Each running pod's GPUs replay a real trace named by the pod annotation ``gridshift.io/power-trace``
(an nvidia-smi CSV, one series per GPU, from the pod's start time plus
``gridshift.io/power-trace-offset-seconds``, looping), or draw the constant
``gridshift.io/watts-per-gpu``; unassigned GPUs draw ``idle_w``. Series carry DCGM exporter's
labels: ``gpu``, ``UUID``, ``Hostname``, and ``namespace``/``pod``/``container`` of the pod using it.

It also plays the renewable plant of each migration site: ``renewables[site]`` watts, served as
``site_renewable_power_watts{site=...}`` (what an inverter or plant exporter would report).

Every second the battery controller integrates the ``spec.setpointWatts`` of each EnergyStorage with
``driver: kubernetes`` (within its ratings and an empty or full battery) into ``status.socFraction``
and reports ``status.powerWatts``, like a site controller would. Batteries with ``driver: modbus``
are the operator's to drive; the Modbus battery simulator plays the device.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import urllib3
from kubernetes import client
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gridshift.api import annotations as ann
from gridshift.api.powerpolicy import API_GROUP, API_VERSION
from gridshift.api.resources import GPU_RESOURCE, gpus_requested, list_items
from gridshift.api.times import parse_rfc3339, rfc3339
from gridshift.ess.physics import BatteryPhysics
from gridshift.telemetry.traces import load_gpu_series

LIST_TIMEOUT_S = 5.0  # a listing the API server cannot answer (etcd down) is given up after this
API_ERRORS = (client.ApiException, urllib3.exceptions.HTTPError, OSError)  # refused, reset, timed out or an error

# Every node's GPU count, and per node the running pods' GPUs in assignment order.
Placement = tuple[dict[str, int], dict[str, list[tuple[dict[str, Any], int]]]]


class Twin(Collector):
    def __init__(self, api: client.ApiClient, trace_dir: Path | None = None, idle_w: float = 60.0,
                 default_w: float = 400.0, refresh_s: float | None = None):
        """``refresh_s``: list nodes and pods in the background this often and serve every scrape
        from the last listing (a fleet of a thousand nodes, where listing them at each scrape outlasts
        the scrape timeout); None lists them at each scrape (power follows a pod at once)."""
        if refresh_s is not None and not refresh_s > 0:
            raise ValueError(f"refresh_s must be positive, got {refresh_s}")
        self.refresh_s = refresh_s
        self.placement: Placement | None = None
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.trace_dir = trace_dir
        self.idle_w = idle_w
        self.default_w = default_w
        self.traces: dict[str, list[np.ndarray]] = {}
        self.stop_event = threading.Event()
        self.server: Any = None
        self.last: dict[str, float] = {}
        self.renewables: dict[str, float] = {}  # site -> renewable supply (W)
        self.silent: set[str] = set()  # nodes whose exporter stopped reporting (their series vanish)

    # -- GPU power ----------------------------------------------------------------------------------------------------

    def _trace(self, name: str) -> list[np.ndarray]:
        if name not in self.traces:
            path = Path(name)
            if not path.is_absolute() and self.trace_dir is not None:
                path = self.trace_dir / path
            series = load_gpu_series([path], step=1.0)
            self.traces[name] = [s.values for s in series] or [np.array([self.default_w])]
        return self.traces[name]

    def _gpu_watts(self, pod: dict[str, Any], index: int, now: float) -> float:
        notes = pod["metadata"].get("annotations") or {}
        if ann.POWER_TRACE in notes:
            traces = self._trace(notes[ann.POWER_TRACE])
            values = traces[index % len(traces)]
            start = (pod.get("status") or {}).get("startTime")
            started = parse_rfc3339(start) or now
            try:
                offset = int(float(notes.get(ann.POWER_TRACE_OFFSET, "0")))
            except ValueError:
                offset = 0
            return float(values[(int(now - started) + offset) % len(values)])
        try:
            return float(notes.get(ann.WATTS_PER_GPU, self.default_w))
        except ValueError:
            return self.default_w

    def _list_placement(self) -> Placement:
        """Every node's GPU count, and the GPUs of the running pods on it in the order they were
        assigned (pod, index of the GPU within the pod)."""
        nodes = {n["metadata"]["name"]: int(((n.get("status") or {}).get("capacity") or {}).get(GPU_RESOURCE, 0))
                 for n in list_items(self.core.list_node, _request_timeout=LIST_TIMEOUT_S)}
        by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in list_items(self.core.list_pod_for_all_namespaces, field_selector="status.phase=Running",
                              _request_timeout=LIST_TIMEOUT_S):
            node = pod["spec"].get("nodeName")
            if (node in nodes and gpus_requested(pod["spec"].get("containers")) > 0
                    and not pod["metadata"].get("deletionTimestamp")):
                by_node.setdefault(node, []).append(pod)
        owners: dict[str, list[tuple[dict[str, Any], int]]] = {}
        for node, pods in by_node.items():
            for pod in sorted(pods, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"])):
                owners.setdefault(node, []).extend(
                    (pod, i) for i in range(gpus_requested(pod["spec"].get("containers"))))
        return nodes, owners

    def _placement_loop(self) -> None:
        assert self.refresh_s is not None
        failing = False
        while not self.stop_event.wait(self.refresh_s):
            try:
                self.placement = self._list_placement()
            except API_ERRORS as exc:  # an API blip: serve the last listing until the next
                if not failing:
                    print(f"twin: listing nodes and pods failed ({type(exc).__name__}); serving the last listing")
                failing = True
            else:
                if failing:
                    print("twin: listing nodes and pods again")
                failing = False

    def _gpus(self, now: float, silent: bool) -> Iterator[tuple[list[str], float]]:
        """Each GPU's labels and watts; the silent nodes' too when ``silent``."""
        if self.refresh_s is None:
            try:
                self.placement = self._list_placement()
            except API_ERRORS:  # the API server down: the GPUs draw on, as the last listing placed them
                if self.placement is None:
                    raise
        assert self.placement is not None
        nodes, placed = self.placement
        for node, gpus in nodes.items():
            if node in self.silent and not silent:
                continue
            owners = placed.get(node, [])
            for g in range(gpus):
                if g < len(owners):
                    pod, i = owners[g]
                    meta = pod["metadata"]
                    yield ([str(g), f"GPU-{node}-{g}", node, meta["namespace"], meta["name"],
                            pod["spec"]["containers"][0]["name"]], self._gpu_watts(pod, i, now))
                else:
                    yield [str(g), f"GPU-{node}-{g}", node, "", "", ""], self.idle_w

    def drawn_watts(self, nodes: Collection[str]) -> float:
        """What the GPUs of ``nodes`` draw now, silent or not (what a site meter would read)."""
        return sum(watts for labels, watts in self._gpus(time.time(), silent=True) if labels[2] in nodes)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).",
                                   labels=["gpu", "UUID", "Hostname", "namespace", "pod", "container"])
        for labels, watts in self._gpus(time.time(), silent=False):
            family.add_metric(labels, watts)
        yield family
        plants = GaugeMetricFamily("site_renewable_power_watts", "Renewable supply of a site (W).", labels=["site"])
        for site, watts in sorted(self.renewables.items()):
            plants.add_metric([site], watts)
        yield plants

    # -- battery controller -------------------------------------------------------------------------------------------

    def step_batteries(self, now: float) -> None:
        try:
            items = self.custom.list_cluster_custom_object(API_GROUP, API_VERSION, "energystorages",
                                                           _request_timeout=LIST_TIMEOUT_S)["items"]
        except API_ERRORS:  # the API server down: the batteries are stepped when it is back
            return
        for obj in items:
            name = obj["metadata"]["name"]
            spec = obj["spec"]
            if spec.get("driver", "kubernetes") != "kubernetes":
                continue  # the operator drives it over Modbus
            status = obj.get("status") or {}
            # A lossless battery: the site controller only has to move state of charge with the setpoint.
            physics = BatteryPhysics(float(spec["capacityWattHours"]), float(spec["maxChargeWatts"]),
                                     float(spec["maxDischargeWatts"]), round_trip_efficiency=1.0,
                                     soc_fraction=float(status.get("socFraction", 0.8)))
            elapsed = now - self.last.get(name, now)
            self.last[name] = now
            power = physics.step(float(spec.get("setpointWatts", 0.0)), elapsed)
            stamp = rfc3339(now)
            try:
                self.custom.patch_cluster_custom_object_status(
                    API_GROUP, API_VERSION, "energystorages", name,
                    {"status": {"socFraction": round(physics.soc_fraction, 6), "sohFraction": 1.0,
                                "powerWatts": power, "lastUpdateTime": stamp}}, _request_timeout=LIST_TIMEOUT_S)
            except API_ERRORS:
                continue

    def _battery_loop(self) -> None:
        while not self.stop_event.wait(1.0):
            self.step_batteries(time.time())

    # -- serving ------------------------------------------------------------------------------------------------------

    def serve(self, port: int, addr: str = "127.0.0.1", extra: tuple[Collector, ...] = ()) -> Twin:
        """Serve the GPU series (and ``extra`` collectors, e.g. a simulated battery's) on ``port``."""
        registry = CollectorRegistry()
        registry.register(self)
        for collector in extra:
            registry.register(collector)
        if self.refresh_s is not None:
            self.placement = self._list_placement()
            threading.Thread(target=self._placement_loop, daemon=True, name="twin-placement").start()
        self.server, _ = start_http_server(port, addr=addr, registry=registry)
        threading.Thread(target=self._battery_loop, daemon=True, name="twin-battery").start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
