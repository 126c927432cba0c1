"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (TLS, RBAC, static
tokens, service-account keys), kube-controller-manager, kube-scheduler, and kwok managing fake
GPU nodes. Used by ``gridshift dev cluster`` and by the test suite.

Every process runs in its own session so that ``up`` can return while the cluster keeps
running; ``down`` (or :meth:`ControlPlane.stop`) ends them all from the pid file.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from gridshift.devcluster.binaries import Binaries, cache_dir
from gridshift.devcluster.pki import Pki, ensure_pki

SITE_LABEL = "gridshift.io/site"
RACK_LABEL = "gridshift.io/rack"

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.96.0.0/16"
RUN_DURATION_ANNOTATION = "gridshift.io/run-duration"
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")

# name -> (token user, groups). The admin is in system:masters; the controllers get the
# identities the RBAC bootstrap policy already grants.
USERS = {
    "admin": ("gridshift-admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "kwok": ("gridshift-kwok", ["system:masters"]),
}


class ClusterError(RuntimeError):
    """The local control plane could not be started or reached."""


@dataclass
class NodePool:
    """A group of fake GPU nodes that share a site and GPU count."""

    count: int = 4
    gpus_per_node: int = 8
    site: str = "site-a"
    racks: int = 2
    prefix: str = ""
    gpu_product: str = "NVIDIA-H100-80GB-HBM3"

    def names(self) -> list[str]:
        prefix = self.prefix or f"gpu-{self.site}"
        return [f"{prefix}-{i:03d}" for i in range(self.count)]


@dataclass
class ClusterState:
    """What ``up`` writes to ``state.json`` so ``down`` and ``status`` can find the cluster."""

    directory: str
    api_port: int
    kubeconfig: str
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> ClusterState:
        return cls(**json.loads((directory / "state.json").read_text()))

    def save(self) -> None:
        (Path(self.directory) / "state.json").write_text(json.dumps(asdict(self), indent=2))


def default_cluster_dir(name: str = "default") -> Path:
    return cache_dir() / "clusters" / name


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports, chosen below the kernel's ephemeral range so that
    the outgoing connections of a starting cluster cannot take one before its server binds it."""
    high = _ephemeral_low() - 1
    low = max(10_000, high - 20_000)
    rng = random.Random()
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", rng.randint(low, high)))
            except OSError:
                s.close()
                continue
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def _kubeconfig(server: str, ca: Path, user: str, token: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gridshift-dev", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "gridshift-dev", "context": {"cluster": "gridshift-dev", "user": user}}],
        "current-context": "gridshift-dev",
    }


def http_ok(url: str) -> bool:
    """True when a plain-HTTP GET of ``url`` answers 200 (loopback health endpoints)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _process_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` runs and its command line mentions ``marker`` (our cluster dir)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and marker in cmdline


class ControlPlane:
    """Start, wait for and stop one local cluster living in ``directory``."""

    def __init__(self, binaries: Binaries, directory: Path, log: Callable[[str], None] | None = None):
        self.bins = binaries
        self.dir = directory
        self.log = log or (lambda msg: None)
        self.state: ClusterState | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._args: dict[str, list[str]] = {}                 # how each component was started
        self._ready: dict[str, Callable[[], bool]] = {}       # and how to tell it is serving

    # -- files -----------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.dir / "admin.kubeconfig"

    def _tokens(self) -> dict[str, str]:
        path = self.dir / "tokens.json"
        if path.exists():
            return json.loads(path.read_text())
        tokens = {name: secrets.token_hex(16) for name in USERS}
        path.write_text(json.dumps(tokens))
        path.chmod(0o600)
        return tokens

    def _write_token_file(self, tokens: dict[str, str]) -> Path:
        path = self.dir / "tokens.csv"
        lines = []
        for name, (user, groups) in USERS.items():
            line = f"{tokens[name]},{user},{user}"
            if groups:
                line += ',"' + ",".join(groups) + '"'
            lines.append(line)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def _write_kubeconfigs(self, server: str, pki: Pki, tokens: dict[str, str]) -> dict[str, Path]:
        paths = {}
        for name, (user, _) in USERS.items():
            path = self.dir / f"{name}.kubeconfig"
            path.write_text(yaml.safe_dump(_kubeconfig(server, pki.ca_cert, user, tokens[name])))
            path.chmod(0o600)
            paths[name] = path
        return paths

    # -- processes -------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> None:
        logfile = open(self.dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - owned by child
        self.log(f"starting {name}")
        proc = subprocess.Popen(
            args, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.dir,
        )
        logfile.close()
        self._procs[name] = proc
        self._args[name] = args
        assert self.state is not None
        self.state.pids[name] = proc.pid
        self.state.save()

    def _check_running(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is not None:
            tail = (self.dir / "logs" / f"{name}.log").read_text(errors="replace").splitlines()[-25:]
            raise ClusterError(f"{name} exited with code {proc.returncode}:\n" + "\n".join(tail))

    def _wait(self, what: str, probe: Callable[[], bool], timeout: float, watch: list[str]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in watch:
                self._check_running(name)
            if probe():
                return
            time.sleep(0.2)
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}; logs in {self.dir / 'logs'}")

    def _https_ok(self, url: str, token: str | None, ca: Path | None) -> bool:
        ctx = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> ClusterState:
        """Start every component and return once the API server is ready and the controllers
        and kwok are running. Raises :class:`ClusterError` with the failing log's tail."""
        if (self.dir / "state.json").exists() and self.is_running():
            raise ClusterError(f"a cluster is already running from {self.dir}; run `gridshift dev cluster down` first")
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        pki = ensure_pki(self.dir / "pki")
        tokens = self._tokens()
        token_file = self._write_token_file(tokens)
        names = ("etcd", "etcd-peer", "api", "kcm", "sched", "kwok")
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        server = f"https://127.0.0.1:{ports['api']}"
        kubeconfigs = self._write_kubeconfigs(server, pki, tokens)
        self.state = ClusterState(str(self.dir), ports["api"], str(kubeconfigs["admin"]))
        self.state.save()
        try:
            self._start_all(pki, token_file, ports, kubeconfigs, tokens, timeout)
        except BaseException:
            self.stop()
            raise
        return self.state

    def _start_all(self, pki: Pki, token_file: Path, ports: dict[str, int],
                   kubeconfigs: dict[str, Path], tokens: dict[str, str], timeout: float) -> None:
        d = self.dir
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        self._spawn("etcd", [
            str(self.bins.path("etcd")), "--name=gridshift-dev", f"--data-dir={d / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=gridshift-dev={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
        ])
        self._ready["etcd"] = lambda: http_ok(f"{etcd_url}/health")
        self._wait("etcd", self._ready["etcd"], 30, ["etcd"])
        self._spawn("kube-apiserver", [
            str(self.bins.path("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports['api']}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={token_file}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_key}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none",
            f"--cert-dir={d / 'apiserver-certs'}",
            "--profiling=false",
            "--v=0",
        ])
        admin_token = tokens["admin"]
        self._ready["kube-apiserver"] = lambda: self._https_ok(f"https://127.0.0.1:{ports['api']}/readyz",
                                                               admin_token, pki.ca_cert)
        self._wait("kube-apiserver /readyz", self._ready["kube-apiserver"], timeout, ["etcd", "kube-apiserver"])
        self._spawn("kube-controller-manager", [
            str(self.bins.path("kube-controller-manager")),
            f"--kubeconfig={kubeconfigs['controller-manager']}",
            f"--authentication-kubeconfig={kubeconfigs['controller-manager']}",
            f"--authorization-kubeconfig={kubeconfigs['controller-manager']}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['kcm']}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            "--leader-elect=false",
            # Faster reaction than the defaults, so tests and demos do not wait on controllers.
            "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
            "--concurrent-job-syncs=10", "--node-monitor-grace-period=60s",
            f"--cert-dir={d / 'kcm-certs'}",
        ])
        self._spawn("kube-scheduler", [
            str(self.bins.path("kube-scheduler")),
            f"--kubeconfig={kubeconfigs['scheduler']}",
            f"--authentication-kubeconfig={kubeconfigs['scheduler']}",
            f"--authorization-kubeconfig={kubeconfigs['scheduler']}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['sched']}",
            "--leader-elect=false",
            f"--cert-dir={d / 'sched-certs'}",
        ])
        self._spawn("kwok", [
            str(self.bins.path("kwok")),
            f"--kubeconfig={kubeconfigs['kwok']}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            "--manage-nodes-with-label-selector=",
            "--cidr=10.244.0.0/16", "--node-ip=10.240.0.1",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            f"--config={KWOK_STAGES}",
        ])
        watch = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
        self._wait("kube-controller-manager /healthz",
                   lambda: self._https_ok(f"https://127.0.0.1:{ports['kcm']}/healthz", None, None), timeout, watch)
        self._wait("kube-scheduler /healthz",
                   lambda: self._https_ok(f"https://127.0.0.1:{ports['sched']}/healthz", None, None), timeout, watch)
        self._wait("kwok /healthz", lambda: http_ok(f"http://127.0.0.1:{ports['kwok']}/healthz"), timeout, watch)

    def kill_component(self, name: str) -> None:
        """SIGKILL one running component (``etcd``, ``kube-apiserver``, ...) of a cluster this object
        started, as a crash would: the others keep running and see it gone."""
        proc = self._procs.get(name)
        if proc is None:
            raise ClusterError(f"no component {name!r} was started here; started: {sorted(self._procs)}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def restart_component(self, name: str, timeout: float = 60.0) -> None:
        """Start a component :meth:`kill_component` killed, with the arguments (ports, data) it had,
        and wait until it serves again."""
        if name not in self._args:
            raise ClusterError(f"no component {name!r} was started here; started: {sorted(self._args)}")
        self._spawn(name, self._args[name])
        if name in self._ready:
            self._wait(f"{name} after a restart", self._ready[name], timeout, [name])

    def is_running(self) -> bool:
        try:
            state = ClusterState.load(self.dir)
        except (OSError, ValueError):
            return False
        return any(_process_alive(pid, str(self.dir)) for pid in state.pids.values())

    def stop(self, grace: float = 10.0) -> None:
        """Stop every component (newest first) and wait until none is left."""
        try:
            state = self.state or ClusterState.load(self.dir)
        except (OSError, ValueError):
            return
        marker = str(self.dir)
        order = list(state.pids.items())[::-1]
        for _name, pid in order:
            if _process_alive(pid, marker):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, pid in order:
            proc = self._procs.get(name)
            while _process_alive(pid, marker) and time.monotonic() < deadline:
                if proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.2)
                else:
                    time.sleep(0.1)
            if _process_alive(pid, marker):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        state.pids = {}
        state.save()
