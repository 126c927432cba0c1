"""Prerequisites are checked before a long build: each missing one is named with its fix, and the
build about to start is estimated (devcluster.preflight, binaries' Go version rules, the CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridshift.devcluster import binaries, preflight
from gridshift.devcluster.preflight import Facts, build_estimate_s, problems

GIB = 1024**3


def facts(**changes: object) -> Facts:
    base = dict(to_build=("kube-apiserver", "etcd", "prometheus"), go="/usr/bin/go", go_version=(1, 26),
                toolchain_env=None, free_bytes=100 * GIB, cache=Path("/cache"))
    base.update(changes)
    return Facts(**base)  # type: ignore[arg-type]


def test_a_ready_machine_has_no_problem() -> None:
    assert problems(facts()) == []
    assert problems(facts(to_build=(), go=None, free_bytes=0)) == []  # nothing to build: no Go, no disk needed


def test_no_go_names_what_must_be_built_and_how_to_avoid_it() -> None:
    [problem] = problems(facts(go=None, go_version=None))
    assert "kube-apiserver, etcd, prometheus" in problem.what
    assert "GRIDSHIFT_K8S_BIN_DIR" in problem.fix and "1.21" in problem.fix


def test_a_go_too_old_to_fetch_a_toolchain_is_refused_and_a_newer_one_is_not() -> None:
    [problem] = problems(facts(go_version=(1, 19)))
    assert "Go 1.19" in problem.what and "1.21" in problem.fix
    assert problems(facts(go_version=(1, 22))) == []  # fetches the fallback toolchain itself
    [pinned] = problems(facts(go_version=(1, 22), toolchain_env="local"))
    assert "GOTOOLCHAIN=local" in pinned.what and binaries.FALLBACK_TOOLCHAIN in pinned.fix


def test_too_little_disk_is_named_with_the_space_needed() -> None:
    [problem] = problems(facts(free_bytes=2 * GIB))
    assert "2.0 GiB free under /cache" in problem.what and "GRIDSHIFT_CACHE_DIR" in problem.fix


def test_a_missing_extra_names_the_install_command() -> None:
    [problem] = problems(facts(to_build=(), missing_extras=("plot",)))
    assert problem.what == "matplotlib is not installed" and problem.fix == "pip install 'gridshift[plot]'"


def test_the_estimate_prefers_this_machines_own_timings_and_scales_by_cores() -> None:
    reference = preflight.REFERENCE_BUILD_S
    two = build_estimate_s(facts(cores=2))
    assert two == reference["kubernetes"] + reference["etcd"] + reference["prometheus"]
    assert build_estimate_s(facts(cores=4)) == pytest.approx(two / 2)
    own = build_estimate_s(facts(timings={"kubernetes": 60.0}))
    assert own == 60.0 + reference["etcd"] + reference["prometheus"]
    # four control-plane commands are one build step, counted once
    assert build_estimate_s(facts(to_build=binaries.K8S_COMMANDS)) == reference["kubernetes"]


def test_go_versions_and_the_toolchain_the_builds_use() -> None:
    assert binaries.parse_go_version("go1.24.9\n") == (1, 24)
    assert binaries.parse_go_version("go1.26rc1") == (1, 26)
    assert binaries.parse_go_version("") is None
    assert binaries.toolchain_for((1, 26), None) == "local"
    assert binaries.toolchain_for((1, 22), None) == binaries.FALLBACK_TOOLCHAIN
    assert binaries.toolchain_for((1, 22), "go1.25.0") == "go1.25.0"


def test_cluster_up_without_go_fails_at_once_naming_the_fix(tmp_path: Path) -> None:
    """A bare machine (no Go, nothing built): the command stops before building anything."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "GRIDSHIFT_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GRIDSHIFT_K8S_BIN_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "gridshift.cli", "dev", "cluster", "up", "--dir", str(tmp_path / "c")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Go is not installed" in proc.stderr and "https://go.dev/doc/install" in proc.stderr
    assert not (tmp_path / "cache" / "bin").exists()  # nothing was started or built
