"""Shared by the benchmark scripts (run as `python bench/NAME.py`, so this folder is on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | None, result: object) -> None:
    """Write ``result`` as indented JSON to ``path`` (folders created) and say so; no-op without a path."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")


def proc_status_mib(pid: int, field: str = "VmHWM") -> float:
    """A memory field of /proc/PID/status in MiB: peak resident (VmHWM, the default) or current (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0
