"""What every command group shares: the error convention, option types that validate themselves,
tables, and the prerequisite check before a long build.

Exit codes: 0 done; 1 the work failed (``Failed``, printed as ``gridshift: <why>``); 2 the command
line is wrong (Click's usage error, naming the option). ``feasibility`` answers 1 for "not feasible".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

import click

from gridshift.planner.units import UnitError, parse_bitrate, parse_bytes, parse_duration, parse_power


class Failed(click.ClickException):
    """The command ran and could not do its work: exit 1 with ``gridshift: <why>`` on stderr."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"gridshift: {self.format_message()}", err=True, file=file)


class Quantity(click.ParamType):
    """A number with a unit (``80GiB``, ``10Gbit/s``, ``3h``, ``6kW``) read into base units."""

    def __init__(self, name: str, parse: Callable[[str, str], float]):
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        what = param.opts[0] if param is not None and param.opts else self.name
        try:
            return self._parse(str(value), what)
        except UnitError as exc:
            self.fail(str(exc).removeprefix(f"{what}: "), param, ctx)


BYTES = Quantity("size", parse_bytes)
BITRATE = Quantity("bitrate", parse_bitrate)
DURATION = Quantity("duration", parse_duration)
POWER = Quantity("power", parse_power)


class PositiveFloats(click.ParamType):
    """Comma-separated positive numbers, e.g. ``5,10,30``."""

    name = "numbers"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, ...]:
        if isinstance(value, tuple):
            return value
        try:
            values = tuple(float(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"expected comma-separated numbers, got {value!r}", param, ctx)
        if not values or any(v <= 0 for v in values):
            self.fail(f"give positive numbers, got {value!r}", param, ctx)
        return values


class Names(click.ParamType):
    """Comma-separated names, at least ``at_least`` of them (``what``: how an error says that many)."""

    name = "names"

    def __init__(self, at_least: int, what: str):
        self.at_least, self.what = at_least, what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        names = [n.strip() for n in str(value).split(",") if n.strip()]
        if len(names) < self.at_least:
            self.fail(f"give at least {self.what}, comma-separated; got {value!r}", param, ctx)
        return names


POSITIVE = click.FloatRange(min=0, min_open=True)
FRACTION = click.FloatRange(0.0, 1.0)
PORT = click.IntRange(0, 65535)


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def table(rows: list[list[str]]) -> str:
    """Rows as aligned columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def preflight(*, control_plane: bool = True, prometheus: bool, extras: tuple[str, ...] = ()) -> None:
    """Check every prerequisite before a long build: fail naming each missing one with its fix, or say
    what is about to be built and for about how long."""
    from gridshift.devcluster import preflight as checks

    facts = checks.check(control_plane=control_plane, prometheus=prometheus, extras=extras)
    found = checks.problems(facts)
    if found:
        raise Failed("\ngridshift: ".join(map(str, found)))
    if facts.to_build:
        minutes = checks.build_estimate_s(facts) / 60.0
        stderr(f"first run on this machine: building {', '.join(facts.to_build)} from Go modules, about "
               f"{minutes:.0f} min on {facts.cores} cores (cached in {facts.cache} for later runs)")


def until_interrupted(stop: Callable[[], None]) -> None:
    """Serve in the background threads until Ctrl-C (or SIGTERM, which Python turns into an exit)."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop()


def writable_file(path: str | None, option: str) -> None:
    """Fail before the work when ``path`` (an output file, its folders made as needed) cannot be
    written: it is a folder, or its nearest existing folder is a file or not writable."""
    import os
    from pathlib import Path

    if path is None:
        return
    target = Path(path).absolute()
    if target.is_dir():
        raise click.BadParameter(f"{path} is a directory; give a file name", param_hint=f"'{option}'")
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise click.BadParameter(f"{existing} is a file, not a folder", param_hint=f"'{option}'")
    if not os.access(existing, os.W_OK):
        raise click.BadParameter(f"{existing} is not writable", param_hint=f"'{option}'")


def needs_extra(module: str, extra: str, what: str = "this") -> None:
    """Fail before the work when an optional dependency is not installed, naming the extra."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise Failed(f"{what} needs {module}: pip install 'gridshift[{extra}]'")
