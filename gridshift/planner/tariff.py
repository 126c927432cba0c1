"""Time-of-use tariff windows, pure: is a given instant on-peak in the site's time zone?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def minutes(hhmm: str) -> int:
    """``"17:30"`` → 1050. ``"24:00"`` is the end of the day."""
    hours, mins = hhmm.split(":")
    value = int(hours) * 60 + int(mins)
    if not (0 <= int(mins) < 60 and 0 <= value <= 24 * 60):
        raise ValueError(f"{hhmm!r} is not a time of day HH:MM")
    return value


@dataclass(frozen=True)
class PeakWindow:
    """On-peak from ``start`` to ``end`` (minutes after midnight, local time) on ``days``
    (0 = Monday); ``end`` before ``start`` wraps past midnight, into the next day."""

    start: int
    end: int
    days: frozenset[int] = frozenset(range(7))

    def contains(self, local: datetime) -> bool:
        now = local.hour * 60 + local.minute + local.second / 60.0
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
