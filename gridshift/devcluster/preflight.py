"""Before a long build, the demo or the test suite: every prerequisite checked within seconds, each
missing one named with its fix, and an estimate of the build that is about to start.

``check`` gathers the facts (which binaries are missing, the Go on PATH, free disk, Prometheus,
the Python extras); ``problems`` and ``build_estimate_s`` are pure and judge them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gridshift.devcluster import binaries

# What a first build adds to the Go module and build caches: `du -sb ~/go/pkg/mod ~/.cache/go-build`
# after a cold `gridshift dev cluster build --prometheus` was 2.1 + 5.3 GB, with the binaries 0.5 GB more.
BUILD_DISK_BYTES = 9 * 1024**3
# Seconds each first build took on the 2-core reference machine (build-seconds.json of that cold
# build); scaled by cores when this machine has not built them yet.
REFERENCE_BUILD_S: Mapping[str, float] = {"kubernetes": 831.0, "etcd": 62.0, "kwok": 192.0, "helm": 165.0,
                                          "prometheus": 292.0}
REFERENCE_CORES = 2
# An extra of the package, and the module that tells whether it is installed.
EXTRA_MODULE = {"plot": "matplotlib", "train": "torch", "devcluster": "cryptography"}
STEP_OF = {**{c: "kubernetes" for c in binaries.K8S_COMMANDS}, "etcd": "etcd", "kwok": "kwok", "helm": "helm",
           "prometheus": "prometheus"}


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}: {self.fix}"


@dataclass(frozen=True)
class Facts:
    """What ``check`` found on this machine."""

    to_build: tuple[str, ...]                 # programs that are missing and would be built
    go: str | None                            # the go on PATH
    go_version: tuple[int, int] | None
    toolchain_env: str | None                 # GOTOOLCHAIN as the user set it
    free_bytes: int                           # free disk where the caches live
    cache: Path
    missing_extras: tuple[str, ...] = ()      # the package's extras the command needs and lacks
    cores: int = 2
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds of earlier builds here


def problems(facts: Facts) -> list[Problem]:
    """Every prerequisite that is missing, with what to do about it."""
    out: list[Problem] = []
    for extra in facts.missing_extras:
        out.append(Problem(f"{EXTRA_MODULE[extra]} is not installed", f"pip install 'gridshift[{extra}]'"))
    if not facts.to_build:
        return out
    names = ", ".join(facts.to_build)
    if facts.go is None:
        out.append(Problem(f"Go is not installed, and {names} must be built from Go modules",
                           "install Go 1.21 or newer (https://go.dev/doc/install; Debian 12's golang-go is 1.19, "
                           "too old), or set GRIDSHIFT_K8S_BIN_DIR to a folder of ready binaries and put "
                           "prometheus on PATH"))
    elif facts.go_version is None or facts.go_version < (1, 21):
        seen = "of unknown version" if facts.go_version is None else _dotted(facts.go_version)
        out.append(Problem(f"Go {seen} at {facts.go} can neither build {names} (needs {_dotted(binaries.MIN_GO)}) "
                           "nor fetch a toolchain that can (needs 1.21)",
                           "install Go 1.21 or newer (https://go.dev/doc/install) ahead of it on PATH"))
    elif facts.go_version < binaries.MIN_GO and facts.toolchain_env == "local":
        out.append(Problem(f"Go {_dotted(facts.go_version)} is older than the build needs "
                           f"({_dotted(binaries.MIN_GO)}) and GOTOOLCHAIN=local forbids fetching a newer one",
                           f"unset GOTOOLCHAIN (then {binaries.FALLBACK_TOOLCHAIN} is fetched from the module "
                           "proxy) or install a newer Go"))
    if facts.free_bytes < BUILD_DISK_BYTES:
        out.append(Problem(f"{facts.free_bytes / 1024**3:.1f} GiB free under {facts.cache}, the first build needs "
                           f"about {BUILD_DISK_BYTES / 1024**3:.0f} GiB",
                           "free some disk, or set GRIDSHIFT_CACHE_DIR (and GOMODCACHE, GOCACHE) to a larger disk"))
    return out


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))


def build_estimate_s(facts: Facts) -> float:
    """Seconds the builds in ``facts.to_build`` should take: this machine's own earlier timing of a
    step when it has one, else the reference machine's scaled by cores."""
    steps = dict.fromkeys(STEP_OF[name] for name in facts.to_build)
    scale = REFERENCE_CORES / max(1, facts.cores)
    return sum(facts.timings.get(step, REFERENCE_BUILD_S[step] * scale) for step in steps)


def _free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check(*, control_plane: bool = True, prometheus: bool, extras: Sequence[str] = ()) -> Facts:
    """The facts of this machine for a command that needs the control plane (unless it is given one),
    with ``prometheus`` a Prometheus too (the demo, the test suite), and the package's ``extras``."""
    cached = binaries.Binaries(binaries.default_bin_dir())
    to_build: list[str] = []
    if control_plane and not os.environ.get("GRIDSHIFT_K8S_BIN_DIR"):
        to_build += cached.missing()
    if prometheus and binaries.find_prometheus() is None:
        to_build.append("prometheus")
    go = shutil.which("go")
    cache = binaries.cache_dir()
    timings = dict(binaries.build_seconds(cached))
    missing_extras = tuple(e for e in extras if importlib.util.find_spec(EXTRA_MODULE[e]) is None)
    return Facts(tuple(to_build), go, binaries.go_version(go) if go and to_build else None,
                 os.environ.get("GOTOOLCHAIN"), _free_bytes(cache), cache, missing_extras, os.cpu_count() or 1,
                 timings)
