"""`gridshift demo` in short: the live table, the battery (over Modbus) covering the surge alone,
no second over the cap after the surge's first period, no recharge while the surge is within the
charging lookback (so no crossing a charge could cause), and the PNG timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridshift.devcluster.binaries import find_prometheus
from gridshift.devcluster.demo import run_demo
from tests.conftest import Kube

pytestmark = pytest.mark.cluster


def test_short_demo_covers_the_surge_with_the_battery_and_causes_no_crossing(kube: Kube, tmp_path: Path) -> None:
    if find_prometheus() is None:
        pytest.skip("no prometheus: make binaries builds one (CI installs Debian's)")
    lines: list[str] = []
    png = tmp_path / "demo.png"
    result = run_demo(kube.api, kube.kubeconfig, tmp_path / "work", duration_s=95, surge_at_s=8, surge_s=20,
                      trace_dir=None, out_png=png, print_fn=lines.append)
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("t(s)"))
    assert "grid W" in lines[header] and "SoC" in lines[header] and "tariff" in lines[header]
    assert any("surge" in line for line in lines)
    verbs = [a["verb"] for a in result.actions]
    assert "discharge" in verbs, f"the battery is the first rung: {result.actions}"
    assert not set(verbs) & {"scaleDown", "checkpoint", "suspend"}, f"the battery alone covers it: {result.actions}"
    assert all(not a["dryRun"] for a in result.actions)
    table = "\n".join(lines)
    covered = [r for r in result.rows if r.battery_w > 0 and r.grid_w is not None]
    assert covered and max(r.grid_w for r in covered) < 10_000, f"grid under the cap once it discharges:\n{table}"
    # Status says how long the battery's energy lasts at its recent mean discharge, once it has discharged.
    first = min(r.t for r in covered)
    assert all(r.endurance_s is None for r in result.rows if r.battery_w == 0 and r.t < first), table
    later = [r.endurance_s for r in result.rows if r.t > first + 6]
    assert later and all(e is not None and e > 0 for e in later), f"status.batteryEnduranceSeconds: {later}"
    # The state of charge, read back from the device over Modbus, falls during the surge and rises off-peak.
    socs = [(r.t, r.soc, r.tariff) for r in result.rows if r.soc is not None]
    low = min(socs, key=lambda x: x[1])
    assert low[1] < socs[0][1] - 0.005, f"discharging lowers the state of charge:\n{table}"
    assert all(tariff != "OffPeak" for t, _, tariff in socs if t < 25), "on-peak until after the surge"
    # From the period after the battery first answered, no second of the table is over the cap; the surge
    # is within the last 10 minutes, so no charge meets the load's next rise (planner.charging.LOOKBACK_S).
    assert all(r.grid_w <= 10_000 for r in result.rows if r.grid_w is not None and r.t >= first + 5), table
    assert "charge" not in verbs and all(r.battery_w >= 0 for r in result.rows), f"no charge yet:\n{table}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
