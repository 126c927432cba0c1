"""Fixtures of the closed-loop tests: the telemetry twin and a real Prometheus (module-wide), and
a fresh site of kwok GPU nodes per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridshift.devcluster.binaries import find_prometheus
from gridshift.devcluster.controlplane import free_port
from gridshift.devcluster.lab import Site, delete_site, new_site, start_prometheus
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.devcluster.twin import Twin
from tests.conftest import Kube


@dataclass
class Lab:
    kube: Kube
    twin: Twin
    twin_port: int
    prometheus_url: str
    tmp: Path
    prometheus: LocalPrometheus


@pytest.fixture(scope="module")
def lab(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if find_prometheus() is None:
        pytest.skip("no prometheus: make binaries builds one (CI installs Debian's)")
    tmp = tmp_path_factory.mktemp("power-lab")
    port = free_port()
    twin = Twin(kube.api).serve(port)
    prom = start_prometheus(tmp / "prometheus", port)
    try:
        yield Lab(kube, twin, port, prom.url, tmp, prom)
    finally:
        prom.stop()
        twin.stop()


@pytest.fixture
def site(lab: Lab) -> Iterator[Site]:
    s = new_site(lab.kube.api, count=4)  # 32 GPUs: room for 4-GPU pods however the 1-GPU pods spread
    yield s
    delete_site(lab.kube.api, s)


