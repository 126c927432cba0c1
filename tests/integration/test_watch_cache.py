"""The watch caches on the real API server: what a period reads from them is what listing the
cluster gives, they follow creations, changes and deletions within moments, and they keep doing so
after the API server ends a watch (the reflector resumes from its version)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.devcluster.lab import Site, inference, policy, training
from gridshift.operator import watching
from gridshift.operator.inventory import InventoryReader
from gridshift.operator.watching import WatchCache
from tests.conftest import Kube, eventually

pytestmark = pytest.mark.cluster


@pytest.fixture
def cache(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> Iterator[WatchCache]:
    monkeypatch.setattr(watching, "WATCH_TIMEOUT_S", 2)  # the API server ends every watch after 2 s
    started = WatchCache(kube.api).start()
    assert started.wait_synced(30), "every kind listed"
    yield started
    started.stop()


def _names(objects: tuple[dict, ...] | list[dict], namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o["metadata"].get("namespace") == namespace}


def test_a_period_reads_from_the_caches_what_listing_gives(kube: Kube, site: Site, namespace: str,
                                                            cache: WatchCache) -> None:
    kube.apps.create_namespaced_deployment(namespace, inference("chat", site.name, 3, 300, min_replicas=1))
    kube.batch.create_namespaced_job(namespace, training("pretrain", site.name, 1, 4, 600))
    eventually(lambda: len(kube.core.list_namespaced_pod(namespace, field_selector="status.phase=Running").items) == 4,
               60, what="pods running")

    def both() -> tuple[object, object]:
        snap = cache.snapshot()
        assert snap is not None
        spec = PowerPolicySpec.model_validate(
            policy("pp", site.name, namespace, "http://unused", cap=1e4, trigger=9e3, dry_run=True)["spec"])
        reader = InventoryReader(kube.api)
        listed = reader.listed()
        cached = reader.read("pp", spec, reader.nodes(spec.scope.node_selector, snap), objects=snap)
        fresh = reader.read("pp", spec, reader.nodes(spec.scope.node_selector, listed), objects=listed)
        return cached, fresh

    cached, _ = eventually(lambda: (lambda pair: pair if pair[0] == pair[1] else None)(both()), 10,
                               what="the cached inventory to match the listed one")  # type: ignore[misc]
    assert sorted(w.key for w in cached.workloads) == [  # type: ignore[attr-defined]
        f"Deployment/{namespace}/chat", f"Job/{namespace}/pretrain"]
    assert cached.nodes == sorted(site.nodes)  # type: ignore[attr-defined]


def test_the_caches_follow_changes_across_expired_watches(kube: Kube, site: Site, namespace: str,
                                                          cache: WatchCache) -> None:
    def chat() -> dict | None:
        snap = cache.snapshot()
        assert snap is not None
        return next((d for d in snap.workloads("deployments") if _names([d], namespace) == {"chat"}), None)

    kube.apps.create_namespaced_deployment(namespace, inference("chat", site.name, 2, 300))
    eventually(chat, 10, what="a new Deployment in the cache")
    eventually(lambda: len(_names(cache.snapshot().running_pods, namespace)) == 2, 60,  # type: ignore[union-attr]
               what="its pods in the cache once Running")
    relists = cache.reflectors["deployments"].relists
    for replicas in (1, 3):  # each change after at least one watch has ended (2 s)
        time.sleep(2.5)
        kube.apps.patch_namespaced_deployment("chat", namespace, {
            "metadata": {"annotations": {"gridshift.io/priority": str(replicas)}}, "spec": {"replicas": replicas}})
        eventually(lambda r=replicas: (chat() or {}).get("spec", {}).get("replicas") == r, 10,
                   what=f"replicas {replicas} in the cache")
    assert chat()["metadata"]["annotations"] == {"gridshift.io/priority": "3"}  # type: ignore[index]
    assert cache.reflectors["deployments"].relists == relists, "an ended watch resumes, it does not list again"
    kube.apps.delete_namespaced_deployment("chat", namespace)
    eventually(lambda: chat() is None, 10, what="a deleted Deployment gone from the cache")
