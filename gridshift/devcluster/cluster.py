"""The local dev cluster as one object: binaries, control plane, gridshift's CRDs and kwok GPU
nodes. ``gridshift dev cluster up`` and the test suite's fixture both go through here."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

from gridshift.api.crd import all_crds
from gridshift.devcluster.binaries import Binaries, ensure_binaries
from gridshift.devcluster.controlplane import ClusterState, ControlPlane, NodePool, default_cluster_dir
from gridshift.devcluster.nodes import register_gpu_nodes


def api_client_for(kubeconfig: str | Path) -> client.ApiClient:
    """A Kubernetes client configured from one kubeconfig file (never the global default)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def install_crds(api: client.ApiClient, timeout: float = 30.0) -> None:
    """Create or update gridshift's CRDs and wait until the API server serves them."""
    ext = client.ApiextensionsV1Api(api)
    for crd in all_crds():
        name = crd["metadata"]["name"]
        try:
            current = ext.read_custom_resource_definition(name)
            crd = {**crd, "metadata": {**crd["metadata"], "resourceVersion": current.metadata.resource_version}}
            ext.replace_custom_resource_definition(name, crd)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(crd)
        deadline = time.monotonic() + timeout
        while True:
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout:.0f}s")
            time.sleep(0.2)


def wait_for_default_service_account(api: client.ApiClient, namespace: str = "default", timeout: float = 60.0) -> None:
    """Pods are refused until the namespace's ``default`` ServiceAccount exists."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        time.sleep(0.2)
    raise TimeoutError(f"ServiceAccount {namespace}/default was not created within {timeout:.0f}s")


@dataclass
class DevCluster:
    """A running local cluster and what a caller needs to use it."""

    control_plane: ControlPlane
    binaries: Binaries
    pools: list[NodePool] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def server(self) -> str:
        assert self.control_plane.state is not None
        return f"https://127.0.0.1:{self.control_plane.state.api_port}"

    @property
    def node_count(self) -> int:
        return sum(p.count for p in self.pools)

    def api_client(self) -> client.ApiClient:
        return api_client_for(self.kubeconfig)

    @classmethod
    def up(
        cls,
        directory: Path | None = None,
        pools: list[NodePool] | None = None,
        log: Callable[[str], None] | None = None,
        fresh: bool = True,
    ) -> DevCluster:
        """Build what is missing, start the control plane, install CRDs and GPU nodes."""
        log = log or (lambda msg: None)
        directory = directory or default_cluster_dir()
        bins = ensure_binaries(log=log)
        plane = ControlPlane(bins, directory, log=log)
        if fresh and directory.exists() and not plane.is_running():
            shutil.rmtree(directory / "etcd", ignore_errors=True)
        pools = pools if pools is not None else [NodePool()]
        plane.start()
        try:
            api = api_client_for(plane.kubeconfig)
            log("installing CRDs")
            install_crds(api)
            log(f"registering {sum(p.count for p in pools)} GPU nodes")
            register_gpu_nodes(api, pools)
            wait_for_default_service_account(api)
        except BaseException:
            plane.stop()
            raise
        return cls(plane, bins, pools)

    def down_now(self) -> None:
        self.control_plane.stop()

    @staticmethod
    def down(directory: Path | None = None) -> bool:
        directory = directory or default_cluster_dir()
        plane = ControlPlane(Binaries(directory), directory)
        was_running = plane.is_running()
        plane.stop()
        return was_running

    @staticmethod
    def status(directory: Path | None = None) -> dict[str, str] | None:
        directory = directory or default_cluster_dir()
        plane = ControlPlane(Binaries(directory), directory)
        if not plane.is_running():
            return None
        state = ClusterState.load(directory)
        return {
            "server": f"https://127.0.0.1:{state.api_port}",
            "kubeconfig": state.kubeconfig,
            "processes": ", ".join(f"{k}={v}" for k, v in state.pids.items()),
            "logs": str(directory / "logs"),
        }
