"""Parts of the closed loop shared by the demo and the end-to-end tests: fresh kwok GPU nodes on
their own site, workload and policy manifests, Prometheus queries, and the operator as a separate
process (`gridshift operator run`) that can be killed and restarted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from gridshift.devcluster.controlplane import NodePool, free_ports
from gridshift.devcluster.nodes import register_gpu_nodes
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.telemetry.prometheus import node_matcher


def prom_query(url: str, query: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=5) as r:
        return json.load(r)["data"]["result"]


def prom_range(url: str, query: str, start: float, end: float) -> list[tuple[float, float]]:
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": 1})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=5) as r:
        result = json.load(r)["data"]["result"]
    return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


@dataclass
class Site:
    name: str
    nodes: list[str]

    @property
    def power_query(self) -> str:
        return f"sum(DCGM_FI_DEV_POWER_USAGE{{{node_matcher('Hostname', self.nodes)}}})"


def new_site(api: client.ApiClient, count: int = 4, gpus: int = 8, prefix: str = "e2e") -> Site:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    nodes = register_gpu_nodes(api, [NodePool(count=count, gpus_per_node=gpus, site=name, racks=1)])
    return Site(name, nodes)


def delete_site(api: client.ApiClient, site: Site) -> None:
    core = client.CoreV1Api(api)
    for node in site.nodes:
        with contextlib.suppress(client.ApiException):
            core.delete_node(node)


def force_delete(custom: client.CustomObjectsApi, plural: str, name: str) -> None:
    """Delete a gridshift.io object now, finalizer included (for when no operator is left to run
    it); an object already gone is fine."""
    try:
        custom.patch_cluster_custom_object("gridshift.io", "v1alpha1", plural, name, {"metadata": {"finalizers": None}})
        custom.delete_cluster_custom_object("gridshift.io", "v1alpha1", plural, name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


class OperatorProcess:
    """`gridshift operator run` in its own process group, logging to a file."""

    def __init__(self, kubeconfig: Path, prometheus_url: str, log: Path, peering_priority: int | None = None,
                 extra_args: tuple[str, ...] = ()):
        self.kubeconfig = kubeconfig
        self.extra_args = extra_args
        self.peering = ["--standalone"] if peering_priority is None else [
            "--peering", "gridshift", "--priority", str(peering_priority)]
        self.prometheus_url = prometheus_url
        self.log = log
        self.metrics_port, self.health_port = free_ports(2)
        self.proc: subprocess.Popen | None = None

    def start(self) -> OperatorProcess:
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gridshift.cli", "operator", "run", "--kubeconfig", str(self.kubeconfig),
             "--prometheus-url", self.prometheus_url, *self.peering, "--bind", "127.0.0.1",
             "--metrics-port", str(self.metrics_port), "--health-port", str(self.health_port), *self.extra_args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"operator not healthy after 60 s:\n{self.tail()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def kill(self) -> None:
        """SIGKILL: no clean-up, as when a node dies under the operator."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def start_prometheus(directory: Path, twin_port: int) -> LocalPrometheus:
    return LocalPrometheus(directory, [f"127.0.0.1:{twin_port}"]).start()


class CheckpointSidecar(threading.Thread):
    """Plays the job's side of the handshake: answers gridshift.io/checkpoint-requested."""

    def __init__(self, batch: client.BatchV1Api, namespace: str, name: str):
        super().__init__(daemon=True)
        self.batch, self.namespace, self.name = batch, namespace, name
        self.stop = threading.Event()
        self.answered = 0

    def run(self) -> None:
        while not self.stop.wait(0.3):
            try:
                job = self.batch.read_namespaced_job(self.name, self.namespace)
            except client.ApiException:
                continue
            notes = job.metadata.annotations or {}
            if notes.get("gridshift.io/checkpoint-requested") and not notes.get("gridshift.io/checkpoint-completed"):
                self.batch.patch_namespaced_job(self.name, self.namespace, {"metadata": {"annotations": {
                    "gridshift.io/checkpoint-completed": f"s3://ckpt/{self.name}/{self.answered}"}}})
                self.answered += 1


# -- manifests --------------------------------------------------------------------------------------------------------


def inference(name: str, site: str, replicas: int, watts_per_gpu: float, *, priority: int = 0,
              min_replicas: int | None = None) -> dict[str, Any]:
    notes = {"gridshift.io/priority": str(priority)}
    if min_replicas is not None:
        notes["gridshift.io/min-replicas"] = str(min_replicas)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "gridshift.io/elastic": "true"}, "annotations": notes},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": _power_notes(watts_per_gpu)},
                "spec": _pod_spec(site, 1),
            },
        },
    }


def training(name: str, site: str, pods: int, gpus: int, watts_per_gpu: float, *, protected: bool = False,
             priority: int = 0, trace: str | None = None, trace_offset_s: int = 0,
             run_seconds: int | None = None) -> dict[str, Any]:
    """A training Job; ``trace`` makes the twin replay a real nvidia-smi log, ``run_seconds`` makes
    kwok complete its pods after that long."""
    labels = {"app": name}
    if protected:
        labels["gridshift.io/protected"] = "true"
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels, "annotations": {"gridshift.io/priority": str(priority)}},
        "spec": {
            "parallelism": pods, "completions": pods, "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": name},
                             "annotations": _power_notes(watts_per_gpu, trace, run_seconds, trace_offset_s)},
                "spec": {**_pod_spec(site, gpus), "restartPolicy": "Never"},
            },
        },
    }


def _power_notes(watts_per_gpu: float, trace: str | None = None, run_seconds: int | None = None,
                 trace_offset_s: int = 0) -> dict[str, str]:
    """What the telemetry twin makes each of the pod's GPUs draw (and how long kwok runs the pod)."""
    notes = {"gridshift.io/watts-per-gpu": str(watts_per_gpu)}
    if trace is not None:
        notes["gridshift.io/power-trace"] = trace
        notes["gridshift.io/power-trace-offset-seconds"] = str(trace_offset_s)
    if run_seconds is not None:
        notes["gridshift.io/run-duration"] = f"{run_seconds}s"
    return notes


def _pod_spec(site: str, gpus: int) -> dict[str, Any]:
    return {
        "nodeSelector": {"gridshift.io/site": site},
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "main", "image": "registry.invalid/gpu-workload:1",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
    }


def policy(name: str, site: str, namespace: str, prometheus_url: str, *, cap: float, trigger: float,
           dry_run: bool, ladder: list[str] | None = None, period: int = 2, **safety: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gridshift.io/v1alpha1", "kind": "PowerPolicy", "metadata": {"name": name},
        "spec": {
            "scope": {"nodeSelector": {"matchLabels": {"gridshift.io/site": site}}},
            "budget": {"capWatts": cap, "triggerWatts": trigger},
            "telemetry": {"prometheusUrl": prometheus_url, "staleAfterSeconds": 10},
            "workloads": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "ladder": ladder or ["scaleDown", "suspend"], "wattsPerGpu": 600,
                "checkpoint": {"deadlineSeconds": 30, "onTimeout": "suspend"},
            },
            "safety": {"dryRun": dry_run, "periodSeconds": period, "cooldownSeconds": 0, "maxActionsPerPeriod": 3,
                       "restoreRampWattsPerMinute": 200000, "hysteresisFraction": 0.05, **safety},
        },
    }
