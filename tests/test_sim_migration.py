"""Migration across renewable windows: window detection and forecast, the three strategies on a
hand-made scenario where the answer is known, and the evaluation on real EIA-930 wind and solar."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gridshift.cli import main
from gridshift.sim.migration import (
    Job,
    Scenario,
    Site,
    build_scenario,
    compare,
    forecast_window_hours,
    simulate,
    window_hours,
    windows,
)
from gridshift.telemetry.grid import load_eia930
from tests.conftest import SHARED_DATA

EIA = SHARED_DATA / "grid" / "eia-930-2022-hourly"
P = 10_000.0


def test_windows_and_their_forecast() -> None:
    surplus = np.array([0, P, P, P, 0, 0, P, 0] * 4, dtype=float)
    assert windows(surplus[:8], P) == [(1, 4), (6, 7)]
    assert windows(surplus[:8], P, min_hours=2) == [(1, 4)]
    assert window_hours(surplus, 1, P) == 3 and window_hours(surplus, 0, P) == 0
    assert forecast_window_hours(surplus, 0, P) == 0, "no surplus now: no window"
    assert forecast_window_hours(surplus, 1, P) == 1, "first day: only the current hour is assumed"
    assert forecast_window_hours(surplus, 25, P) == 3, "then as long as it lasted yesterday"


def _two_sites(window_h: int) -> tuple[Site, ...]:
    hours = 48
    home = np.full(hours, -P)                       # never any surplus at home
    away = np.full(hours, -P)
    away[2:2 + window_h] = 2 * P                    # a window at the other site, also yesterday
    away[26:26 + window_h] = 2 * P
    return Site("home", home), Site("away", away)


def test_chasing_a_window_shorter_than_the_move_wastes_the_move() -> None:
    # 1 TB over 1 Gbit/s takes about 2.5 h; the window lasts 2 h.
    jobs = (Job(0, 25 * 3600.0, 6 * 3600.0, P, 1e12, 0),)
    scn = Scenario(_two_sites(2), np.full((2, 2), 1e9), jobs)
    chase, feasible, stay = (simulate(scn, s) for s in ("chase", "feasible", "stay"))
    assert chase.moves == 1 and chase.aborted == 1
    assert feasible.moves == 0 and feasible.aborted == 0
    assert feasible.nonrenewable_kwh == pytest.approx(stay.nonrenewable_kwh)
    assert chase.delay_h[0] > 2 and feasible.delay_h[0] == pytest.approx(0)
    assert chase.nonrenewable_kwh > feasible.nonrenewable_kwh, "the wasted move costs energy too"


def test_a_timely_move_is_taken_by_both_and_saves_energy() -> None:
    jobs = (Job(0, 26 * 3600.0, 4 * 3600.0, P, 10e9, 0),)   # 10 GB over 10 Gbit/s: seconds
    scn = Scenario(_two_sites(8), np.full((2, 2), 1e10), jobs)
    chase, feasible, stay = (simulate(scn, s) for s in ("chase", "feasible", "stay"))
    assert chase.moves == feasible.moves == 1 and chase.aborted == feasible.aborted == 0
    assert feasible.nonrenewable_kwh < 0.1 * stay.nonrenewable_kwh


@pytest.mark.skipif(not EIA.exists(), reason=f"{EIA} not found: the shared grid traces are not here")
def test_real_week_feasibility_beats_chasing_on_slow_links() -> None:
    """Five seeded job streams over a June week at CISO, ERCO and MISO with 0.1 to 1 Gbit/s links:
    feasibility-aware migration wastes far fewer moves and delays jobs far less than chasing, for a
    few percent more non-renewable energy (the moves it refuses would sometimes have paid off), and
    both use much less than staying put."""
    mixes = {ba: load_eia930(EIA / f"{ba}.csv").variable_renewable for ba in ("CISO", "ERCO", "MISO")}
    totals = {s: {"kwh": 0.0, "delay": 0.0, "aborted": 0} for s in ("stay", "chase", "feasible")}
    for seed in range(5):
        r = compare(build_scenario(mixes, start_hour=24 * 151, days=7, seed=seed, bandwidth_bps=(1e8, 1e9)))
        assert r["stay"]["moves"] == 0
        for s, t in totals.items():
            t["kwh"] += r[s]["nonrenewable_kwh"]
            t["delay"] += r[s]["mean_delay_h"]
            t["aborted"] += r[s]["aborted_moves"]
    chase, feasible, stay = totals["chase"], totals["feasible"], totals["stay"]
    assert feasible["aborted"] < chase["aborted"] / 3, totals
    assert feasible["delay"] < 0.75 * chase["delay"], totals
    assert feasible["kwh"] < 1.1 * chase["kwh"], totals
    assert feasible["kwh"] < 0.8 * stay["kwh"], totals
    first = compare(build_scenario(mixes, start_hour=24 * 151, days=7, seed=0, bandwidth_bps=(1e8, 1e9)))
    again = compare(build_scenario(mixes, start_hour=24 * 151, days=7, seed=0, bandwidth_bps=(1e8, 1e9)))
    assert again == first, "deterministic with a seed"


@pytest.mark.skipif(not EIA.exists(), reason=f"{EIA} not found: the shared grid traces are not here")
def test_cli_json_and_plot(capsys, tmp_path) -> None:
    png = tmp_path / "mig.png"
    assert main(["sim", "migration", "--data", str(EIA), "--days", "4", "--json", "--plot", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["results"]) == {"1Gbit/s-100Gbit/s", "100Mbit/s-1Gbit/s"}
    assert set(doc["results"]["1Gbit/s-100Gbit/s"]) == {"stay", "chase", "feasible"}
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["sim", "migration", "--data", str(EIA), "--bandwidth", "1Gbit-10Gbit/s"]) == 2, "a usage error"
    assert "Invalid value for '--bandwidth': unknown unit 'Gbit'" in capsys.readouterr().err
