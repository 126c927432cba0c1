"""`gridshift dev cluster up/status/down` as a person runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridshift.devcluster.binaries import ensure_binaries

pytestmark = pytest.mark.cluster


def gridshift(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridshift.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def processes_mentioning(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and "pytest" not in cmdline:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def test_up_prints_a_working_kubeconfig_and_down_leaves_nothing(tmp_path: Path):
    if os.environ.get("GRIDSHIFT_KUBECONFIG"):
        pytest.skip("an external cluster is in use")
    state = tmp_path / "cli-cluster"
    up = gridshift("dev", "cluster", "up", "--dir", str(state), "--nodes", "2", "--sites", "east,west")
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        assert "kubeconfig:" in up.stdout
        kubeconfig = next(line.split(":", 1)[1].strip() for line in up.stdout.splitlines()
                          if line.startswith("kubeconfig:"))

        status = gridshift("dev", "cluster", "status", "--dir", str(state))
        assert status.returncode == 0 and "server:" in status.stdout

        kubectl = ensure_binaries().path("kubectl")
        nodes = subprocess.run([str(kubectl), "--kubeconfig", kubeconfig, "get", "nodes",
                                "-L", "gridshift.io/site", "--no-headers"],
                               capture_output=True, text=True, timeout=60)
        assert nodes.returncode == 0, nodes.stderr
        rows = nodes.stdout.strip().splitlines()
        assert len(rows) == 4
        assert sum(" east" in r for r in rows) == 2 and sum(" west" in r for r in rows) == 2
        assert all(" Ready " in r for r in rows)

        again = gridshift("dev", "cluster", "up", "--dir", str(state))
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        down = gridshift("dev", "cluster", "down", "--dir", str(state))
    assert down.returncode == 0 and "cluster stopped" in down.stdout
    assert processes_mentioning(str(state)) == []
    assert gridshift("dev", "cluster", "status", "--dir", str(state)).returncode == 1
