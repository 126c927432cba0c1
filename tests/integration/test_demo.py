"""`gridshift demo` in short: the live table, actions during the surge, and the PNG timeline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gridshift.devcluster.demo import run_demo
from tests.conftest import Kube

pytestmark = pytest.mark.cluster


def test_short_demo_prints_the_table_acts_on_the_surge_and_writes_a_png(kube: Kube, tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not on PATH: apt-get install prometheus (CI installs it)")
    lines: list[str] = []
    png = tmp_path / "demo.png"
    result = run_demo(kube.api, kube.kubeconfig, tmp_path / "work", duration_s=40, surge_at_s=8, trace_dir=None,
                      out_png=png, print_fn=lines.append)
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("t(s)"))
    assert "grid W" in lines[header] and "forecast" in lines[header]
    assert any("surge" in line for line in lines)
    verbs = {a["verb"] for a in result.actions}
    assert "discharge" in verbs, f"the battery is the first rung: {result.actions}"
    assert verbs & {"scaleDown", "checkpoint", "suspend"}, "a 5 kW surge needs more than the 3 kW battery"
    assert all(not a["dryRun"] for a in result.actions)
    late = [r for r in result.rows if r.t > 30 and r.grid_w is not None]
    assert late and max(r.grid_w for r in late) < 10_000, "grid draw back under the cap once the ladder acted"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
