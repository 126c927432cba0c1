"""One chaos run on the local control plane (``bench/chaos.py`` runs many, a test runs one).

The site: ``Site`` nodes with three governed workloads (two inference Deployments, a training Job)
well under the cap, and a policy with the workload rungs (scale down, then checkpoint and suspend).
Three seconds in, a surge Job takes the site over the cap; it leaves at ``surge_end_s``, and the
policy restores. Meanwhile the faults of ``chaos.fault_plan`` strike (each healed after its
duration): the operator SIGKILLed and restarted, Prometheus stopped and started, the policy's
connections to Prometheus and the operator's to the API server reset and refused (through a
``BlipProxy`` each), the operator's API connections slowed, a node's exporter silent and, when the
rig owns its control plane, the kube-apiserver or etcd SIGKILLed and restarted. At the end every
fault is healed, the policy is deleted, and the audit (``chaos``) compares what the API server saw
with what the operators recorded. Observation polls every 0.25 s: the governed objects (for their
changes), the policy's status (the union of its recent actions) and the power the site's GPUs
really draw (``Twin.drawn_watts``, silent nodes included).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from kubernetes import client

from gridshift.api import annotations as ann
from gridshift.api.times import parse_rfc3339
from gridshift.devcluster import chaos
from gridshift.devcluster.controlplane import ControlPlane
from gridshift.devcluster.lab import OperatorProcess, Site, inference, policy, training
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.devcluster.proxy import BlipProxy
from gridshift.devcluster.twin import Twin

GROUP, VERSION, PLURAL = "gridshift.io", "v1alpha1", "powerpolicies"
CAP_W, TRIGGER_W = 7_500.0, 7_000.0
OBSERVE_TIMEOUT_S = 5.0  # an observation the API server cannot answer (etcd down) is skipped after this
SLOW_LINK_DELAY_S = 1.0  # each chunk on a slowed API connection waits this long
RECORDS = (ann.MANAGED_BY, ann.ORIGINAL_REPLICAS)  # what a restored object no longer carries


@dataclass
class Rig:
    """What the runs share: the cluster (admin client), the twin, Prometheus, the proxies the operator
    reaches the API server and the policy reaches Prometheus through, the operator process and the site;
    and the control plane when the runs may restart its components (else None)."""

    api: client.ApiClient
    twin: Twin
    prometheus: LocalPrometheus
    api_proxy: BlipProxy
    operator: OperatorProcess
    prometheus_proxy: BlipProxy
    site: Site
    namespace: str
    plane: ControlPlane | None = None

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        if self.plane is not None:
            return chaos.FAULTS
        return tuple(k for k in chaos.FAULTS if k not in chaos.CONTROL_PLANE_FAULTS)

    @property
    def targets(self) -> dict[str, tuple[str, str]]:
        return {f"Deployment/{self.namespace}/chat": ("Deployment", "chat"),
                f"Deployment/{self.namespace}/embed": ("Deployment", "embed"),
                f"Job/{self.namespace}/pretrain": ("Job", "pretrain")}


@dataclass
class RunResult:
    seed: int
    faults: list[chaos.Fault]
    applied: list[str] = field(default_factory=list)         # the faults that took effect, by kind
    changes: list[chaos.Change] = field(default_factory=list)
    records: set[chaos.Record] = field(default_factory=set)
    unrecorded: list[chaos.Change] = field(default_factory=list)
    doubled: list[chaos.Change] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    crossings: list[tuple[float, float]] = field(default_factory=list)
    acted: bool = False                                        # the policy changed something
    released_s: float | None = None                            # deletion to the policy gone

    def summary(self) -> dict[str, Any]:
        return {"seed": self.seed, "faults": len(self.applied), "fault_kinds": self.applied,
                "changes": len(self.changes), "records": len(self.records), "acted": self.acted,
                "lost": self.lost, "unrecorded": [vars(c) for c in self.unrecorded],
                "doubled": [vars(c) for c in self.doubled], "own_crossings": len(self.crossings),
                "released_s": self.released_s}


def setup_workloads(rig: Rig) -> dict[str, tuple[int | None, bool]]:
    """The governed workloads (5.0 kW with the idle GPUs of a 4-node site), created once; their originals."""
    apps, batch = client.AppsV1Api(rig.api), client.BatchV1Api(rig.api)
    apps.create_namespaced_deployment(rig.namespace, inference("chat", rig.site.name, 4, 400, priority=1))
    apps.create_namespaced_deployment(rig.namespace, inference("embed", rig.site.name, 4, 300, priority=2))
    batch.create_namespaced_job(rig.namespace, training("pretrain", rig.site.name, 1, 4, 500, priority=3))
    return {target: (None if kind == "Job" else 4, False) for target, (kind, _) in rig.targets.items()}


def _state(rig: Rig) -> dict[str, tuple[tuple[int | None, bool], dict[str, str]]]:
    """Each governed object's (replicas, suspended) and annotations."""
    apps, batch = client.AppsV1Api(rig.api), client.BatchV1Api(rig.api)
    out: dict[str, tuple[tuple[int | None, bool], dict[str, str]]] = {}
    for target, (kind, name) in rig.targets.items():
        if kind == "Job":
            job = batch.read_namespaced_job(name, rig.namespace, _request_timeout=OBSERVE_TIMEOUT_S)
            out[target] = ((None, bool(job.spec.suspend)), job.metadata.annotations or {})
        else:
            dep = apps.read_namespaced_deployment(name, rig.namespace, _request_timeout=OBSERVE_TIMEOUT_S)
            out[target] = ((dep.spec.replicas, False), dep.metadata.annotations or {})
    return out


def reset(rig: Rig, originals: dict[str, tuple[int | None, bool]]) -> None:
    """Put every governed object back at its original and drop gridshift's records (after a run that lost one)."""
    apps, batch = client.AppsV1Api(rig.api), client.BatchV1Api(rig.api)
    drop = {key: None for key in (*RECORDS, ann.CHECKPOINT_REQUESTED, ann.LAST_ACTION)}
    for target, (kind, name) in rig.targets.items():
        replicas, suspended = originals[target]
        if kind == "Job":
            batch.patch_namespaced_job(name, rig.namespace, {"metadata": {"annotations": drop},
                                                             "spec": {"suspend": suspended}})
        else:
            apps.patch_namespaced_deployment(name, rig.namespace, {"metadata": {"annotations": drop},
                                                                   "spec": {"replicas": replicas}})


class _Observer(threading.Thread):
    """Polls the governed objects, the policy's status and the site's drawn power."""

    def __init__(self, rig: Rig, name: str, result: RunResult):
        super().__init__(name="chaos-observer", daemon=True)
        self.rig, self.name, self.result = rig, name, result
        self.power: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.last = {t: s for t, (s, _) in _state(rig).items()}

    def run(self) -> None:
        custom = client.CustomObjectsApi(self.rig.api)
        while not self.stop.wait(0.25):
            now = time.time()
            with contextlib.suppress(Exception):  # an observation missed is taken at the next poll
                self.power.append((now, self.rig.twin.drawn_watts(self.rig.site.nodes)))
            # The API server may be down or without etcd: an observation missed is taken at the next poll
            # (nothing changes while it cannot answer).
            with contextlib.suppress(Exception):
                for target, (state, _) in _state(self.rig).items():
                    change = chaos.change_of(target, self.last[target], state, now)
                    if change is not None:
                        self.result.changes.append(change)
                    self.last[target] = state
            with contextlib.suppress(Exception):
                status = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, self.name,
                                                          _request_timeout=OBSERVE_TIMEOUT_S).get("status") or {}
                for r in status.get("recentActions") or []:
                    if r.get("outcome") != "Reported" and r.get("verb") in ("scaleDown", "scaleUp", "suspend",
                                                                            "resume"):
                        self.result.records.add(chaos.Record(parse_rfc3339(r["time"]) or 0.0, r["target"],
                                                             r["verb"]))


_COMPONENTS = {"apiserver": "kube-apiserver", "etcd": "etcd"}


def _attempt(call: Any) -> bool:
    """Whether ``call()`` went through (the API server may be down for a fault)."""
    try:
        call()
    except Exception:
        return False
    return True


class _Faults:
    """Applies and heals the faults; a fault whose kind is already in force only extends it."""

    def __init__(self, rig: Rig, rng: random.Random):
        self.rig, self.rng = rig, rng
        self.heal_at: dict[str, float] = {}
        self.silent: str | None = None

    def strike(self, kind: str, lasts_s: float) -> bool:
        now = time.monotonic()
        if kind in self.heal_at:
            self.heal_at[kind] = max(self.heal_at[kind], now + lasts_s)
            return False
        if kind == "kill":
            self.rig.operator.kill()
        elif kind == "prometheus":
            self.rig.prometheus.stop()
        elif kind == "silent":
            self.silent = self.rng.choice(self.rig.site.nodes)
            self.rig.twin.silent.add(self.silent)
        elif kind == "api":
            self.rig.api_proxy.cut()
        elif kind == "prometheus_net":
            self.rig.prometheus_proxy.cut()
        elif kind == "api_slow":
            self.rig.api_proxy.delay_s = SLOW_LINK_DELAY_S
        elif kind in chaos.CONTROL_PLANE_FAULTS:
            assert self.rig.plane is not None, f"a {kind} fault needs the rig's control plane"
            self.rig.plane.kill_component(_COMPONENTS[kind])
        self.heal_at[kind] = now + lasts_s
        return True

    def heal(self, everything: bool = False) -> None:
        now = time.monotonic()
        for kind, at in list(self.heal_at.items()):
            if not everything and at > now:
                continue
            if kind == "kill":
                self.rig.operator.start()
            elif kind == "prometheus":
                self.rig.prometheus.start()
            elif kind == "silent" and self.silent is not None:
                self.rig.twin.silent.discard(self.silent)
            elif kind == "api":
                self.rig.api_proxy.restore()
            elif kind == "prometheus_net":
                self.rig.prometheus_proxy.restore()
            elif kind == "api_slow":
                self.rig.api_proxy.delay_s = 0.0
            elif kind in chaos.CONTROL_PLANE_FAULTS:
                assert self.rig.plane is not None
                self.rig.plane.restart_component(_COMPONENTS[kind])
            del self.heal_at[kind]


def run(rig: Rig, originals: dict[str, tuple[int | None, bool]], seed: int, faults: int = 10,
        surge_end_s: float = 40.0, span_s: float = 50.0, settle_s: float = 15.0) -> RunResult:
    """One run: policy, surge, ``faults`` faults within ``span_s``, heal, delete the policy, audit."""
    rng = random.Random(seed)
    result = RunResult(seed, chaos.fault_plan(rng, faults, span_s, rig.fault_kinds))
    custom, batch = client.CustomObjectsApi(rig.api), client.BatchV1Api(rig.api)
    name = f"chaos-{seed}"
    doc = policy(name, rig.site.name, rig.namespace, f"http://127.0.0.1:{rig.prometheus_proxy.port}", cap=CAP_W,
                 trigger=TRIGGER_W,
                 dry_run=False, ladder=["scaleDown", "suspend"], period=2)
    doc["spec"]["workloads"]["checkpoint"]["deadlineSeconds"] = 10
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, doc)
    observer = _Observer(rig, name, result)
    observer.start()
    injector = _Faults(rig, rng)
    start = time.monotonic()
    pending = list(result.faults)
    surged = ended = False
    try:
        while time.monotonic() - start < span_s + settle_s:
            elapsed = time.monotonic() - start
            if not surged and elapsed >= 3.0:
                surged = _attempt(lambda: batch.create_namespaced_job(
                    rig.namespace, training("surge", rig.site.name, 1, 4, 700), _request_timeout=OBSERVE_TIMEOUT_S))
            if not ended and elapsed >= surge_end_s:
                ended = _attempt(lambda: batch.delete_namespaced_job(
                    "surge", rig.namespace, propagation_policy="Background", _request_timeout=OBSERVE_TIMEOUT_S))
            while pending and pending[0].at_s <= elapsed:
                fault = pending.pop(0)
                if injector.strike(fault.kind, fault.lasts_s):
                    result.applied.append(fault.kind)
            if elapsed >= span_s:
                injector.heal(everything=True)
            else:
                injector.heal()
            time.sleep(0.1)
    finally:
        injector.heal(everything=True)
        if not ended:
            with contextlib.suppress(client.ApiException):
                batch.delete_namespaced_job("surge", rig.namespace, propagation_policy="Background")
    deleted = time.time()
    custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
    while time.time() - deleted < 60:
        try:
            custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        except client.ApiException as exc:
            if exc.status == 404:
                result.released_s = round(time.time() - deleted, 2)
                break
        time.sleep(0.2)
    time.sleep(1.0)
    observer.stop.set()
    observer.join(timeout=10)

    during = [c for c in result.changes if c.t < deleted]
    result.acted = bool(during)
    result.unrecorded, result.doubled = chaos.explain(during, result.records)
    finals = _state(rig)
    annotated = [t for t, (_, notes) in finals.items() if any(k in notes for k in RECORDS)]
    result.lost = chaos.lost(originals, {t: s for t, (s, _) in finals.items()}, annotated)
    restores = [c for c in during if c.verb in chaos.RESTORES]
    result.crossings = chaos.own_crossings(observer.power, CAP_W, restores)
    if result.lost or result.released_s is None:
        reset(rig, originals)
    return result


def open_rig(stack: contextlib.ExitStack, api: client.ApiClient, kubeconfig: Path, twin: Twin,
             prometheus: LocalPrometheus, site: Site, namespace: str, workdir: Path,
             plane: ControlPlane | None = None) -> Rig:
    """The proxies and the operator (reaching the API server through one) for ``site``; stopped with
    ``stack``. With ``plane`` (a control plane the runs own) the runs also restart its API server and etcd."""
    doc = yaml.safe_load(kubeconfig.read_text())
    server = urlsplit(doc["clusters"][0]["cluster"]["server"])
    api_proxy = BlipProxy((server.hostname or "127.0.0.1", server.port or 443))
    stack.callback(api_proxy.close)
    for entry in doc["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{api_proxy.port}"
    via = workdir / "operator.kubeconfig"
    via.write_text(yaml.safe_dump(doc))
    operator = OperatorProcess(via, prometheus.url, workdir / "operator.log").start()
    stack.callback(operator.stop)
    prometheus_proxy = BlipProxy(("127.0.0.1", prometheus.port))  # the policy reads Prometheus through it
    stack.callback(prometheus_proxy.close)
    return Rig(api, twin, prometheus, api_proxy, operator, prometheus_proxy, site, namespace, plane)
