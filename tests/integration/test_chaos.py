"""The chaos suite's short version (``bench/chaos.py`` runs 20 runs of 13 faults, API server and etcd
restarts included): one run of the closed loop under random faults (the operator SIGKILLed,
Prometheus stopped, a node silent, the API connection cut or slowed; the shared cluster's API server
and etcd are left alone), then the audit: every object back at its original, every change recorded
once, no second over the cap caused by a restore."""

from __future__ import annotations

import contextlib

import pytest

from gridshift.devcluster import chaoslab
from gridshift.devcluster.lab import Site
from tests.integration.conftest import Lab

pytestmark = pytest.mark.cluster


def test_a_run_under_faults_loses_nothing_and_records_every_change(lab: Lab, site: Site, namespace: str) -> None:
    with contextlib.ExitStack() as stack:
        rig = chaoslab.open_rig(stack, lab.kube.api, lab.kube.kubeconfig, lab.twin, lab.prometheus, site, namespace,
                                lab.tmp)
        originals = chaoslab.setup_workloads(rig)
        result = chaoslab.run(rig, originals, seed=1, faults=6)
        row = result.summary()
        assert result.acted and row["faults"] >= 4, row  # the policy shed the surge; the faults struck
        assert result.lost == [], f"{row}\n{rig.operator.tail()}"
        assert result.unrecorded == [] and result.doubled == [], f"{row}\n{rig.operator.tail()}"
        assert result.crossings == [], row
        assert result.released_s is not None and result.released_s < 30, row
