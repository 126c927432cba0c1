"""The operator under load and under fire.

Many policies: more PowerPolicies than Kopf's thread pool has workers (min(32, cores + 4): 6 on a
2-core machine) are each controlled every period, and deleting one while the others run completes
at once. Sync daemons held one pool thread each for their whole life, so the policies past the
pool's size never got a status, and the deletion's release handler queued behind them.

An API server outage: control resumes within a period of the API's return."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from gridshift.api.times import parse_rfc3339
from gridshift.devcluster.lab import OperatorProcess, Site, force_delete, policy
from gridshift.devcluster.proxy import BlipProxy
from tests.conftest import Kube, eventually
from tests.integration.conftest import Lab

pytestmark = pytest.mark.cluster

GROUP, VERSION, PLURAL = "gridshift.io", "v1alpha1", "powerpolicies"
POLICIES = max(12, 2 * min(32, (os.cpu_count() or 1) + 4))  # twice the pool a sync daemon would hold


def _statuses(kube: Kube, names: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        out[name] = (obj.get("status") or {}).get("lastPeriodTime")
    return out


def _gone(kube: Kube, name: str) -> bool:
    return not any(o["metadata"]["name"] == name for o in
                   kube.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"])


def test_every_policy_is_controlled_and_a_deletion_does_not_wait(lab: Lab, site: Site, namespace: str) -> None:
    kube = lab.kube
    names = [f"many-{namespace}-{i}" for i in range(POLICIES)]
    operator = OperatorProcess(kube.kubeconfig, lab.prometheus_url, lab.tmp / f"many-{namespace}.log").start()
    try:
        for name in names:
            kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, policy(
                name, site.name, namespace, lab.prometheus_url, cap=11_000, trigger=10_000, dry_run=True))
        # Every policy runs its periods: each one's lastPeriodTime is set, then moves on.
        first = eventually(lambda: (lambda s: s if all(s.values()) else None)(_statuses(kube, names)), 60,
                           interval=1, what=f"a status on each of {POLICIES} policies\n{operator.tail()}")
        eventually(lambda: all(v != first[k] for k, v in _statuses(kube, names).items()), 30, interval=1,
                   what=f"every policy's next period\n{operator.tail()}")

        # Deleting one releases it (finalizer gone) within seconds while the others keep running.
        started = time.monotonic()
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, names[0])
        eventually(lambda: _gone(kube, names[0]), 15, interval=0.2, what=f"{names[0]} deleted\n{operator.tail()}")
        took = time.monotonic() - started
        assert took < 10, f"the deletion took {took:.1f} s"
        before = _statuses(kube, names[1:])
        eventually(lambda: all(v != before[k] for k, v in _statuses(kube, names[1:]).items()), 30, interval=1,
                   what=f"the other policies still controlled\n{operator.tail()}")
    finally:
        operator.stop()
        for name in names:
            force_delete(kube.custom, PLURAL, name)


def _via(proxy: BlipProxy, kubeconfig: Path, out: Path) -> Path:
    """``kubeconfig`` with its server reached through ``proxy``."""
    doc = yaml.safe_load(kubeconfig.read_text())
    for entry in doc["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    out.write_text(yaml.safe_dump(doc))
    return out


def _last_period(kube: Kube, name: str) -> float:
    status = kube.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name).get("status") or {}
    return parse_rfc3339(status.get("lastPeriodTime")) or 0.0


def test_control_resumes_within_a_period_of_an_api_server_outage(lab: Lab, site: Site, namespace: str) -> None:
    """A 15 s outage of the API server, as the operator sees it (every connection reset, new ones
    refused): the next period after the API comes back writes its status, not Kopf's one-minute
    retry of a daemon that died on a connection error."""
    kube = lab.kube
    server = urlsplit(yaml.safe_load(kube.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
    proxy = BlipProxy((server.hostname or "127.0.0.1", server.port or 443))
    name = f"blip-{namespace}"
    operator = OperatorProcess(_via(proxy, kube.kubeconfig, lab.tmp / f"{name}.kubeconfig"), lab.prometheus_url,
                               lab.tmp / f"{name}.log").start()
    period = 2
    try:
        kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, policy(
            name, site.name, namespace, lab.prometheus_url, cap=11_000, trigger=10_000, dry_run=True, period=period))
        eventually(lambda: _last_period(kube, name), 60, interval=0.5, what=f"a first period\n{operator.tail()}")
        proxy.cut()
        time.sleep(15)
        back = time.time()
        proxy.restore()
        eventually(lambda: _last_period(kube, name) >= back - 1, 30, interval=0.2,
                   what=f"a period after the outage\n{operator.tail()}")
        resumed = time.time() - back
        # One period, one status write, the status's one-second resolution and this poll's interval.
        assert resumed <= period + 2, f"control resumed {resumed:.1f} s after the API came back\n{operator.tail()}"
    finally:
        operator.stop()
        proxy.close()
        force_delete(kube.custom, PLURAL, name)
