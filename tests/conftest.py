"""Shared fixtures. ``kube`` hands every integration test a client for a REAL Kubernetes API
server: the local control plane (built once from Go modules and started on loopback for this
test session) or, when ``GRIDSHIFT_KUBECONFIG`` is set, an existing cluster such as kind."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gridshift.devcluster.cluster import (
    DevCluster,
    api_client_for,
    install_crds,
    wait_for_default_service_account,
)
from gridshift.devcluster.controlplane import NodePool

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The session's GPU node pools: two sites so that site-aware tests have somewhere to go.
TEST_POOLS = [NodePool(count=3, gpus_per_node=8, site="site-a"), NodePool(count=2, gpus_per_node=8, site="site-b")]


@dataclass
class Kube:
    """A running cluster as tests see it."""

    api: client.ApiClient
    kubeconfig: Path
    cluster: DevCluster | None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    external = os.environ.get("GRIDSHIFT_KUBECONFIG")
    if external:
        api = api_client_for(external)
        install_crds(api)
        yield Kube(api, Path(external), None)
        return
    directory = tmp_path_factory.mktemp("cluster")
    cluster = DevCluster.up(directory=directory, pools=TEST_POOLS, log=lambda m: print(m, flush=True))
    try:
        yield Kube(cluster.api_client(), cluster.kubeconfig, cluster)
    finally:
        cluster.down_now()


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A fresh namespace, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.core.create_namespace({"metadata": {"name": name}})
    wait_for_default_service_account(kube.api, name)
    yield name
    kube.core.delete_namespace(name, propagation_policy="Background")


def eventually(check: Callable[[], object], timeout: float = 60.0, interval: float = 0.3, what: str = "") -> object:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or check}; last value: {last!r}")


def establish_crd(kube: Kube, crd: dict[str, Any]) -> None:
    """Create a CustomResourceDefinition (already there is fine) and wait until it is established."""
    ext = client.ApiextensionsV1Api(kube.api)
    try:
        ext.create_custom_resource_definition(crd)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    eventually(lambda: any(c.type == "Established" and c.status == "True" for c in
                           ext.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []),
               60, what=f"the {crd['metadata']['name']} CRD to be established")
