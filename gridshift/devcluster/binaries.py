"""Build, cache and locate the control-plane binaries of the local dev cluster.

Nothing here is downloaded as a prebuilt binary: every program is compiled from Go modules
fetched through the Go module proxy, then cached under ``~/.cache/gridshift/bin`` (override with
``GRIDSHIFT_CACHE_DIR``) so that only the first start pays for the build. A user who already has
the binaries points ``GRIDSHIFT_K8S_BIN_DIR`` at them and nothing is built.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.33.13"
ETCD_VERSION = "v3.5.21"
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.18.6"

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ALL_BINARIES = (*K8S_COMMANDS, "etcd", "kwok", "helm")
BUILD_INFO = "build-seconds.json"


class BinaryError(RuntimeError):
    """A binary is missing and cannot be built here."""


@dataclass(frozen=True)
class Binaries:
    """Paths of every program the dev cluster runs."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def missing(self) -> list[str]:
        return [n for n in ALL_BINARIES if not os.access(self.path(n), os.X_OK)]


def cache_dir() -> Path:
    base = os.environ.get("GRIDSHIFT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gridshift"
    )
    return Path(base)


def default_bin_dir() -> Path:
    return cache_dir() / "bin" / f"k8s-{KUBERNETES_VERSION}"


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-mod=mod")
    return env


def _run(cmd: list[str], cwd: Path, log: Callable[[str], None]) -> None:
    log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, env=_go_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise BinaryError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def _require_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BinaryError(
            "Go is not installed, so the Kubernetes control-plane binaries cannot be built. "
            "Install Go >= 1.24 (and access to the Go module proxy), or build/obtain "
            f"{', '.join(ALL_BINARIES)} yourself and set GRIDSHIFT_K8S_BIN_DIR to their folder."
        )
    return go


def _staging_modules(go: str, work: Path, log: Callable[[str], None]) -> list[str]:
    """The k8s.io modules that k8s.io/kubernetes requires at v0.0.0 (its staging repos)."""
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"],
        cwd=work, env=_go_env(), capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise BinaryError(
            "cannot download k8s.io/kubernetes from the Go module proxy "
            f"({proc.stderr.strip()[-400:]}). Without network access to the proxy, set "
            "GRIDSHIFT_K8S_BIN_DIR to a folder holding the binaries."
        )
    gomod = Path(json.loads(proc.stdout)["GoMod"]).read_text()
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*(?://.*)?$", gomod, re.M)))


def _version_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    date = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pairs = {
        "gitVersion": KUBERNETES_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "gitCommit": "0000000000000000000000000000000000000000",
        "buildDate": date,
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{k}={v}" for k, v in pairs.items()]
    return " ".join(flags)


def _build_kubernetes(go: str, out: Path, log: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="gridshift-k8s-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module gridshift.local/k8sbuild\n\ngo 1.24\n")
        staging = _staging_modules(go, work, log)
        release = "v0." + KUBERNETES_VERSION.split(".", 1)[1]
        lines = ["module gridshift.local/k8sbuild", "", "go 1.24", "",
                 f"require k8s.io/kubernetes {KUBERNETES_VERSION}", ""]
        lines += [f"replace {m} => {m} {release}" for m in staging]
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        pkgs = [f"k8s.io/kubernetes/cmd/{c}" for c in K8S_COMMANDS]
        _run([go, "build", "-trimpath", "-ldflags", _version_ldflags(), "-o", str(out) + "/", *pkgs],
             work, log)


def _build_etcd(go: str, out: Path, log: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="gridshift-etcd-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text(
            f"module gridshift.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"
        )
        (work / "main.go").write_text(
            'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
            "func main() { etcdmain.Main(os.Args) }\n"
        )
        _run([go, "mod", "tidy"], work, log)
        _run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "."], work, log)


def _go_install(go: str, pkg: str, name: str, out: Path, log: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="gridshift-gobin-") as tmp:
        env_gobin = Path(tmp)
        cmd = [go, "install", "-trimpath", "-ldflags", "-s -w", pkg]
        log("$ GOBIN=" + str(env_gobin) + " " + " ".join(cmd))
        env = _go_env()
        env["GOBIN"] = str(env_gobin)
        env["GOFLAGS"] = ""  # go install pkg@version refuses -mod=mod
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BinaryError(f"go install {pkg} failed:\n{proc.stderr[-2000:]}")
        shutil.move(str(env_gobin / name), out / name)


def _read_build_info(directory: Path) -> dict[str, float]:
    try:
        return json.loads((directory / BUILD_INFO).read_text())
    except (OSError, ValueError):
        return {}


def build_seconds(bins: Binaries) -> dict[str, float]:
    """Wall-clock seconds each build step took when this binary folder was filled."""
    return _read_build_info(bins.directory)


def ensure_binaries(log: Callable[[str], None] | None = None) -> Binaries:
    """Return the binaries, building the missing ones into the cache first.

    ``GRIDSHIFT_K8S_BIN_DIR`` names a folder of ready binaries; then nothing is built and a
    missing program is an error that says which.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    given = os.environ.get("GRIDSHIFT_K8S_BIN_DIR")
    if given:
        bins = Binaries(Path(given))
        if bins.missing():
            raise BinaryError(
                f"GRIDSHIFT_K8S_BIN_DIR={given} lacks executables: {', '.join(bins.missing())}"
            )
        return bins
    bins = Binaries(default_bin_dir())
    missing = bins.missing()
    if not missing:
        return bins
    go = _require_go()
    out = bins.directory
    out.mkdir(parents=True, exist_ok=True)
    log(f"building {', '.join(missing)} into {out} (once; later starts reuse them)")
    steps: list[tuple[str, Callable[[], None]]] = []
    if any(m in K8S_COMMANDS for m in missing):
        steps.append(("kubernetes", lambda: _build_kubernetes(go, out, log)))
    if "etcd" in missing:
        steps.append(("etcd", lambda: _build_etcd(go, out, log)))
    if "kwok" in missing:
        steps.append(("kwok", lambda: _go_install(go, f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}", "kwok", out, log)))
    if "helm" in missing:
        steps.append(("helm", lambda: _go_install(go, f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}", "helm", out, log)))
    timings = _read_build_info(out)
    for name, build in steps:
        started = time.monotonic()
        build()
        timings[name] = round(time.monotonic() - started, 1)
        log(f"built {name} in {timings[name]:.0f}s")
    (out / BUILD_INFO).write_text(json.dumps(timings, indent=2) + "\n")
    still = bins.missing()
    if still:
        raise BinaryError(f"build finished but these are still missing in {out}: {', '.join(still)}")
    return bins
