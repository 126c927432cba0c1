"""The command line's conventions, whatever the command: help on every option, usage errors (exit 2)
naming the option before any work starts, failures (exit 1) as one ``gridshift:`` line, and the
operator's options from the environment."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click
import pytest

from gridshift.cli import cli, main


def _commands(group: click.Group, path: str = "gridshift") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        out.append((f"{path} {name}", command))
        if isinstance(command, click.Group):
            out.extend(_commands(command, f"{path} {name}"))
    return out


def test_every_command_and_option_says_what_it_is_for() -> None:
    commands = _commands(cli)
    assert len(commands) >= 17
    for path, command in commands:
        assert command.help, f"{path} has no help"
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{path} {param.opts[0]} has no help"


@pytest.mark.parametrize("argv", [
    ["simulate", "--scenario", "mixed", "--plot", "/proc/version/out.png"],
    ["sim", "migration", "--plot", "/proc/version/out.png"],
    ["feasibility", "--checkpoint", "1TB", "--bandwidth", "1Gbit/s", "--window", "2h", "--plot", "/proc/version/x.png"],
    ["forecast", "plot", "--data", "x.csv", "--out", "/proc/version/out.png"],
])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "/proc/version is a file, not a folder" in err and "Traceback" not in err


def test_an_output_folder_given_as_a_file_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--scenario", "mixed", "--plot", str(tmp_path)]) == 2
    assert f"Invalid value for '--plot': {tmp_path} is a directory" in capsys.readouterr().err


def test_a_missing_extra_is_named_before_the_work(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["simulate", "--scenario", "mixed", "--plot", "out.png"]) == 1
    assert capsys.readouterr().err.strip() == "gridshift: --plot needs matplotlib: pip install 'gridshift[plot]'"
    # feasibility keeps 1 for "not feasible": every error is 2 there
    assert main(["feasibility", "--checkpoint", "1TB", "--bandwidth", "1Gbit/s", "--window", "2h",
                 "--plot", "out.png"]) == 2
    assert "gridshift[plot]" in capsys.readouterr().err


def test_a_failure_is_one_line_naming_the_cause(tmp_path: Path, capsys) -> None:
    assert main(["forecast", "evaluate", "--data", str(tmp_path / "nope.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gridshift: ") and "no such file" in err and "Traceback" not in err


def test_the_operator_reads_its_options_from_the_environment(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("GRIDSHIFT_PEERING_LIFETIME", "2")
    assert main(["operator", "run"]) == 2, "a bad value from the environment is a usage error too"
    assert "Invalid value for '--peering-lifetime'" in capsys.readouterr().err
    assert main(["operator", "run", "--help"]) == 0
    assert "GRIDSHIFT_PEERING_LIFETIME" in capsys.readouterr().out


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys) -> None:
    assert main(["nope"]) == 2
    assert "No such command 'nope'" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("gridshift ")
