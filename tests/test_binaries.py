"""When the control-plane binaries cannot be built, the error says why and what to do."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gridshift.cli import main
from gridshift.devcluster import binaries

pytestmark = pytest.mark.go


def test_missing_binaries_in_given_dir_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "etcd").write_text("#!/bin/sh\n")
    (tmp_path / "etcd").chmod(stat.S_IRWXU)
    monkeypatch.setenv("GRIDSHIFT_K8S_BIN_DIR", str(tmp_path))
    with pytest.raises(binaries.BinaryError) as info:
        binaries.ensure_binaries()
    text = str(info.value)
    assert "GRIDSHIFT_K8S_BIN_DIR" in text
    assert "kube-apiserver" in text and "kwok" in text
    assert "etcd," not in text  # present, so not listed as missing


def test_no_go_toolchain_says_so_and_how_to_provide_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.delenv("GRIDSHIFT_K8S_BIN_DIR", raising=False)
    monkeypatch.setenv("GRIDSHIFT_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached there
    monkeypatch.setenv("PATH", str(tmp_path))  # no `go` on PATH
    assert main(["dev", "cluster", "build"]) == 1
    err = capsys.readouterr().err
    assert "Go is not installed" in err
    assert "GRIDSHIFT_K8S_BIN_DIR" in err


def test_cache_dir_honours_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GRIDSHIFT_CACHE_DIR", str(tmp_path))
    assert binaries.default_bin_dir().is_relative_to(tmp_path)
    assert binaries.KUBERNETES_VERSION in os.fspath(binaries.default_bin_dir())


def test_cli_rejects_zero_nodes(capsys):
    assert main(["dev", "cluster", "up", "--nodes", "0"]) == 2
    assert "Invalid value for '--nodes': 0 is not in the range x>=1" in capsys.readouterr().err


def test_a_users_goflags_keep_their_flags_and_the_build_still_resolves_modules() -> None:
    # GOFLAGS=-buildvcs=false in the environment used to replace -mod=mod: a cold build then failed
    # with "missing go.sum entry" before compiling anything.
    assert binaries.go_flags("-buildvcs=false").split() == ["-buildvcs=false", "-mod=mod"]
    assert binaries.go_flags("-mod=vendor -trimpath").split() == ["-trimpath", "-mod=mod"]
    assert binaries.go_flags(None) == "-mod=mod"
    assert binaries.go_flags("-buildvcs=false -mod=mod", mod=None) == "-buildvcs=false"  # for go install pkg@v
