"""Time-of-use tariff windows, pure: is a given instant on-peak in the site's time zone?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def seconds_of_day(text: str) -> int:
    """``"17:30"`` → 63000, ``"17:30:15"`` → 63015. ``"24:00"`` is the end of the day."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a time of day HH:MM[:SS]")
    hours, mins, secs = (int(p) for p in (*parts, "0")[:3])
    value = hours * 3600 + mins * 60 + secs
    if not (mins < 60 and secs < 60 and value <= 86400):
        raise ValueError(f"{text!r} is not a time of day HH:MM[:SS]")
    return value


@dataclass(frozen=True)
class PeakWindow:
    """On-peak from ``start`` to ``end`` (seconds after midnight, local time) on ``days``
    (0 = Monday); ``end`` before ``start`` wraps past midnight, into the next day."""

    start: int
    end: int
    days: frozenset[int] = frozenset(range(7))

    def contains(self, local: datetime) -> bool:
        now = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        day = local.weekday()
        if self.start <= self.end:
            return day in self.days and self.start <= now < self.end
        return (day in self.days and now >= self.start) or ((day - 1) % 7 in self.days and now < self.end)


def is_peak(windows: Sequence[PeakWindow], time_zone: str, t: float) -> bool:
    """Whether the epoch instant ``t`` falls in any window. No windows: never on-peak."""
    if not windows:
        return False
    local = datetime.fromtimestamp(t, ZoneInfo(time_zone))
    return any(w.contains(local) for w in windows)
