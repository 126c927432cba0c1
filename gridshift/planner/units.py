"""Quantities with units, as admins write them: ``80GiB``, ``10Gbit/s``, ``3h``, ``6kW``. Pure;
every parser raises :class:`UnitError` saying what it got and what it accepts."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"


class UnitError(ValueError):
    """A quantity could not be read."""


def _parse(text: str, units: Mapping[str, float], what: str) -> float:
    match = re.fullmatch(_NUMBER + r"([A-Za-z/]*)\s*", str(text))
    if not match:
        raise UnitError(f"{what}: cannot read {text!r}; write a number and a unit, e.g. {_example(units)}")
    value, unit = float(match.group(1)), match.group(2)
    if unit not in units:
        raise UnitError(f"{what}: unknown unit {unit!r} in {text!r}; use one of {', '.join(u for u in units if u)}")
    return value * units[unit]


def _example(units: Mapping[str, float]) -> str:
    return next(f"10{u}" for u in units if u)


BYTES = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
         "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
BITRATE = {"bit/s": 1, "bps": 1, "kbit/s": 1e3, "Kbit/s": 1e3, "kbps": 1e3, "Mbit/s": 1e6, "Mbps": 1e6,
           "Gbit/s": 1e9, "Gbps": 1e9, "Tbit/s": 1e12, "Tbps": 1e12,
           "B/s": 8, "kB/s": 8e3, "MB/s": 8e6, "GB/s": 8e9, "TB/s": 8e12}
DURATION = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}
POWER = {"W": 1, "kW": 1e3, "MW": 1e6}


def parse_bytes(text: str, what: str = "size") -> float:
    """Bytes from ``80GiB``, ``1.5TB``, ``512MB`` (decimal and binary prefixes)."""
    return _positive(_parse(text, BYTES, what), text, what)


def parse_bitrate(text: str, what: str = "bandwidth") -> float:
    """Bits per second from ``10Gbit/s``, ``400Mbps`` or ``1.25GB/s``."""
    return _positive(_parse(text, BITRATE, what), text, what)


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds from ``90s``, ``15min``, ``3h``, ``1d``; a combination like ``1h30min`` too."""
    parts = re.findall(r"([0-9]*\.?[0-9]+)\s*([a-z]+)", str(text))
    if len(parts) > 1 and re.fullmatch(r"(?:\s*[0-9]*\.?[0-9]+\s*[a-z]+)+\s*", str(text)):
        total = math.fsum(_parse(f"{value}{unit}", DURATION, what) for value, unit in parts)
    else:
        total = _parse(text, DURATION, what)
    return _positive(total, text, what)


def parse_power(text: str, what: str = "power") -> float:
    """Watts from ``700W``, ``6kW``, ``2MW``."""
    value = _parse(text, POWER, what)
    if value < 0:
        raise UnitError(f"{what}: {text!r} is negative")
    return value


def _positive(value: float, text: str, what: str) -> float:
    if value <= 0:
        raise UnitError(f"{what}: {text!r} must be more than zero")
    return value
