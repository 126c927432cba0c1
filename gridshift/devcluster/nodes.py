"""Fake GPU nodes for the local cluster: Node objects that kwok keeps Ready and whose pods it
marks Running, with ``nvidia.com/gpu`` capacity and site/rack labels."""

from __future__ import annotations

import time

from kubernetes import client
from kubernetes.client.rest import ApiException

from gridshift.api.resources import GPU_RESOURCE
from gridshift.devcluster.controlplane import (
    KWOK_ANNOTATION,
    RACK_LABEL,
    SITE_LABEL,
    NodePool,
)


def node_manifest(name: str, pool: NodePool, rack: int) -> dict:
    capacity = {
        "cpu": "128",
        "memory": "2Ti",
        "pods": "110",
        "ephemeral-storage": "8Ti",
        GPU_RESOURCE: str(pool.gpus_per_node),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                SITE_LABEL: pool.site,
                RACK_LABEL: f"rack-{rack}",
                "nvidia.com/gpu.product": pool.gpu_product,
                "nvidia.com/gpu.count": str(pool.gpus_per_node),
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def register_gpu_nodes(api: client.ApiClient, pools: list[NodePool], timeout: float = 60.0) -> list[str]:
    """Create (or keep) the nodes of every pool and wait until kwok reports them Ready."""
    core = client.CoreV1Api(api)
    names: list[str] = []
    for pool in pools:
        for i, name in enumerate(pool.names()):
            try:
                core.create_node(node_manifest(name, pool, i % max(pool.racks, 1)))
            except ApiException as exc:
                if exc.status != 409:
                    raise
            names.append(name)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for node in core.list_node().items:
            ready = any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
            if ready:
                pending.discard(node.metadata.name)
        if pending:
            time.sleep(0.3)
    if pending:
        raise TimeoutError(f"kwok did not mark nodes Ready within {timeout:.0f}s: {sorted(pending)[:5]}")
    return names
