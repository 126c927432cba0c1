"""Build, cache and locate the control-plane binaries of the local dev cluster, and Prometheus.

Nothing here is downloaded as a prebuilt binary: every program is compiled from Go modules
fetched through the Go module proxy, then cached under ``~/.cache/gridshift/bin`` (override with
``GRIDSHIFT_CACHE_DIR``) so that only the first start pays for the build. A user who already has
the binaries points ``GRIDSHIFT_K8S_BIN_DIR`` at them and nothing is built. Prometheus is the one on
PATH (Debian's ``prometheus`` package) or ``GRIDSHIFT_PROMETHEUS``; without either it is built from
its Go module like the rest (without its web UI and service discoveries: the tests and the demo
scrape static targets through the API).

The Go on PATH must be 1.21 or newer: an older one than the build needs (1.24) fetches that
toolchain from the Go module proxy by itself (``GOTOOLCHAIN``).
"""

from __future__ import annotations

import datetime as _dt
import functools
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
PROMETHEUS_MODULE_VERSION = "v0.316.0"  # github.com/prometheus/prometheus: Go module versions of the 3.x releases
MIN_GO = (1, 24)            # what the builds need
FALLBACK_TOOLCHAIN = "go1.24.9"  # fetched by an older Go (1.21+) from the module proxy

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


@functools.lru_cache(maxsize=8)
def go_version(go: str) -> tuple[int, int] | None:
    """(major, minor) of the Go at ``go``, or None when it cannot tell (older than 1.16, or broken).
    Asked once per path: every Go command of a build reads it through ``_go_env``."""
    try:
        proc = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "GOTOOLCHAIN": "local"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_go_version(proc.stdout)


def parse_go_version(text: str) -> tuple[int, int] | None:
    """``go1.24.9`` (or ``go1.26rc1``) -> (1, 24)."""
    match = re.search(r"go(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def toolchain_for(version: tuple[int, int] | None, configured: str | None) -> str:
    """The GOTOOLCHAIN the builds run with: the user's if set; the local Go if new enough; else the
    fallback, which a Go of 1.21 or newer fetches from the module proxy."""
    if configured:
        return configured
    return "local" if version is not None and version >= MIN_GO else FALLBACK_TOOLCHAIN


def go_flags(flags: str | None, mod: str | None = "mod") -> str:
    """The user's GOFLAGS with ``-mod=<mod>`` in place of any ``-mod`` they give (None: without one).
    Our build modules have no go.sum until the first build writes it, so it runs with -mod=mod; a
    user's GOFLAGS (say -buildvcs=false) stays."""
    kept = [f for f in (flags or "").split() if not f.startswith("-mod=")]
    return " ".join([*kept, *([f"-mod={mod}"] if mod else [])])


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    go = shutil.which("go")
    env["GOTOOLCHAIN"] = toolchain_for(go_version(go) if go else None, os.environ.get("GOTOOLCHAIN"))
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = go_flags(os.environ.get("GOFLAGS"))
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


def _go_install(go: str, pkg: str, name: str, out: Path, log: Callable[[str], None], tags: str = "",
                toolchain: str | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="gridshift-gobin-") as tmp:
        env_gobin = Path(tmp)
        cmd = [go, "install", "-trimpath", "-ldflags", "-s -w", *(["-tags", tags] if tags else []), pkg]
        log("$ GOBIN=" + str(env_gobin) + " " + " ".join(cmd))
        env = _go_env()
        env["GOBIN"] = str(env_gobin)
        env["GOFLAGS"] = go_flags(os.environ.get("GOFLAGS"), mod=None)  # go install pkg@version refuses -mod
        if toolchain and "GOTOOLCHAIN" not in os.environ:
            env["GOTOOLCHAIN"] = toolchain
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BinaryError(f"go install {pkg} failed:\n{proc.stderr[-2000:]}")
        shutil.move(str(env_gobin / name), out / name)


def module_source(module: str, version: str) -> Path:
    """Where the Go module cache holds ``module@version``'s files (downloaded through the module proxy
    once): how the tests get third-party CRDs (KEDA's ScaledObject) that no container registry serves."""
    go = _require_go()
    with tempfile.TemporaryDirectory(prefix="gridshift-gomod-") as tmp:
        env = _go_env()
        env["GOFLAGS"] = go_flags(os.environ.get("GOFLAGS"), mod=None)
        proc = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=tmp, env=env,
                              capture_output=True, text=True)
    try:
        found = json.loads(proc.stdout)
    except ValueError:
        found = {}
    if proc.returncode != 0 or not found.get("Dir"):
        raise BinaryError(f"go mod download {module}@{version} failed: {found.get('Error') or proc.stderr[-2000:]}")
    return Path(found["Dir"])


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


def built_prometheus() -> Path:
    """Where ``ensure_prometheus`` puts the Prometheus it builds."""
    return cache_dir() / "bin" / f"prometheus-{PROMETHEUS_MODULE_VERSION}" / "prometheus"


def find_prometheus() -> str | None:
    """The Prometheus to run: ``GRIDSHIFT_PROMETHEUS``, else the one on PATH, else one built here."""
    given = os.environ.get("GRIDSHIFT_PROMETHEUS")
    if given:
        return given
    found = shutil.which("prometheus")
    if found:
        return found
    built = built_prometheus()
    return str(built) if os.access(built, os.X_OK) else None


def ensure_prometheus(log: Callable[[str], None] | None = None) -> str:
    """``find_prometheus()``, building Prometheus from its Go module into the cache when there is none
    (its go.mod asks for a newer Go than the control plane: ``GOTOOLCHAIN=auto`` fetches it)."""
    found = find_prometheus()
    if found:
        return found
    log = log or (lambda msg: print(msg, file=sys.stderr))
    go = _require_go()
    target = built_prometheus()
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"prometheus is not on PATH: building it from github.com/prometheus/prometheus@{PROMETHEUS_MODULE_VERSION} "
        f"into {target.parent} (once)")
    started = time.monotonic()
    _go_install(go, f"github.com/prometheus/prometheus/cmd/prometheus@{PROMETHEUS_MODULE_VERSION}", "prometheus",
                target.parent, log, tags="remove_all_sd", toolchain="auto")
    seconds = round(time.monotonic() - started, 1)
    (target.parent / BUILD_INFO).write_text(json.dumps({"prometheus": seconds}, indent=2) + "\n")
    log(f"built prometheus in {seconds:.0f}s")
    return str(target)
