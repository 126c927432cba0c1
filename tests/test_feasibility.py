"""The migration feasibility model: verdicts with their numbers, monotone in size, bandwidth and
window; the units an admin types; the `gridshift feasibility` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.cli import main
from gridshift.planner.feasibility import Move, assess, max_checkpoint_bytes
from gridshift.planner.units import UnitError, parse_bitrate, parse_bytes, parse_duration, parse_power

sizes = st.floats(1e8, 1e13)          # 100 MB to 10 TB
rates = st.floats(1e8, 4e11)          # 0.1 to 400 Gbit/s
windows = st.floats(60, 86400)
factors = st.floats(1.01, 100)


@settings(max_examples=300, deadline=None)
@given(sizes, rates, windows, factors)
def test_feasibility_is_monotone(size: float, rate: float, window: float, k: float) -> None:
    base = assess(Move(size, rate, window))
    if base.feasible:
        assert assess(Move(size / k, rate, window)).feasible, "a smaller checkpoint must stay feasible"
        assert assess(Move(size, rate * k, window)).feasible, "more bandwidth must stay feasible"
        assert assess(Move(size, rate, window * k)).feasible, "a longer window must stay feasible"
    else:
        assert not assess(Move(size * k, rate, window)).feasible
        assert not assess(Move(size, rate / k, window)).feasible
        assert not assess(Move(size, rate, window / k)).feasible


@settings(max_examples=300, deadline=None)
@given(sizes, rates, windows)
def test_every_verdict_carries_consistent_numbers(size: float, rate: float, window: float) -> None:
    v = assess(Move(size, rate, window))
    assert v.move_s == pytest.approx(v.checkpoint_s + v.transfer_s + v.restore_s)
    assert v.transfer_s == pytest.approx(size * 8 / rate)
    assert v.time_budget_s == pytest.approx(0.8 * window)
    assert v.feasible == (v.move_s <= v.time_budget_s and v.move_energy_j < v.avoided_energy_j)
    if v.move_s > v.time_budget_s:
        assert v.binding == "time"
    # On the time boundary the move takes exactly the budget.
    edge = max_checkpoint_bytes(rate, window)
    assert assess(Move(edge, rate, window)).move_s == pytest.approx(0.8 * window)


def test_time_not_energy_binds_on_real_numbers() -> None:
    """A 350M-parameter GPT's checkpoint with optimizer state is a few GB; a 70B model's about 1 TB."""
    cases = [(4e9, 1e9, 3600), (1e12, 10e9, 3 * 3600), (1e12, 1e9, 2 * 3600), (80 * 2**30, 10e9, 1800)]
    for size, rate, window in cases:
        move = Move(size, rate, window, job_power_w=8 * 700)
        v = assess(move)
        assert v.binding == "time", v
        assert v.move_energy_j < v.avoided_energy_j or not v.feasible
    too_slow = assess(Move(1e12, 1e9, 2 * 3600))
    assert not too_slow.feasible and too_slow.binding == "time" and too_slow.time_slack < 0
    # Only when the destination is barely greener does energy bind.
    marginal = assess(Move(4e12, 100e9, 8 * 3600, source_nonrenewable=0.5, destination_nonrenewable=0.49))
    assert marginal.binding == "energy"


@pytest.mark.parametrize(("parser", "text", "value"), [
    (parse_bytes, "80GiB", 80 * 2**30), (parse_bytes, "1.5TB", 1.5e12), (parse_bytes, "512 MB", 512e6),
    (parse_bitrate, "10Gbit/s", 1e10), (parse_bitrate, "400Mbps", 4e8), (parse_bitrate, "1.25GB/s", 1e10),
    (parse_duration, "3h", 10800), (parse_duration, "45min", 2700), (parse_duration, "1h30min", 5400),
    (parse_duration, "90s", 90), (parse_power, "6kW", 6000), (parse_power, "700W", 700),
])
def test_units(parser, text: str, value: float) -> None:
    assert parser(text) == pytest.approx(value)


@pytest.mark.parametrize(("parser", "text", "message"), [
    (parse_bytes, "80GB/s", "unknown unit 'GB/s'"), (parse_bitrate, "10Gbit", "unknown unit 'Gbit'"),
    (parse_duration, "3 fortnights", "unknown unit"), (parse_bytes, "lots", "cannot read 'lots'"),
    (parse_bytes, "0GB", "more than zero"), (parse_power, "6kWh", "unknown unit 'kWh'"),
])
def test_bad_units_are_named(parser, text: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        parser(text)


def test_cli_prints_the_verdict_and_exit_code(capsys) -> None:
    assert main(["feasibility", "--checkpoint", "80GiB", "--bandwidth", "10Gbit/s", "--window", "3h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FEASIBLE: binding constraint is time") and "transfer 1.1 min" in out
    assert main(["feasibility", "--checkpoint", "1TB", "--bandwidth", "1Gbit/s", "--window", "2h", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"]["feasible"] is False and doc["verdict"]["binding"] == "time"
    assert doc["move"]["checkpoint_bytes"] == 1e12


def test_cli_rejects_bad_input_naming_the_flag(capsys) -> None:
    assert main(["feasibility", "--checkpoint", "80GiB", "--bandwidth", "10Gbit", "--window", "3h"]) == 2
    assert "Invalid value for '--bandwidth': unknown unit 'Gbit'" in capsys.readouterr().err
    assert main(["feasibility", "--checkpoint", "80GiB", "--bandwidth", "10Gbit/s", "--window", "3h",
                 "--margin", "1.5"]) == 2
    assert "--margin" in capsys.readouterr().err


def test_cli_plots_the_domain(tmp_path: Path) -> None:
    png = tmp_path / "domain.png"
    main(["feasibility", "--checkpoint", "1TB", "--bandwidth", "1Gbit/s", "--window", "2h", "--plot", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
