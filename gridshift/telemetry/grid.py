"""Grid traces: hourly generation by fuel from EIA-930 (as packaged in ../shared/data/grid)."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gridshift.telemetry.traces import TraceError

FUELS = ("WND", "SUN", "WAT", "OIL", "NG", "COL", "NUC", "OTH")


@dataclass(frozen=True)
class GenerationMix:
    """Hourly generation of one balancing authority, MWh per fuel."""

    name: str
    times: np.ndarray              # epoch seconds, hourly
    by_fuel: dict[str, np.ndarray]

    @property
    def variable_renewable(self) -> np.ndarray:
        """Wind plus solar: the part that comes and goes."""
        renewable: np.ndarray = self.by_fuel["WND"] + self.by_fuel["SUN"]
        return renewable

    @property
    def total(self) -> np.ndarray:
        total: np.ndarray = np.sum([self.by_fuel[f] for f in FUELS], axis=0)
        return total


def load_eia930(path: str | Path) -> GenerationMix:
    """One ``{BA}.csv``: ``timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI``. Empty cells are 0 MWh
    (the BA reports no generation of that fuel); an unreadable row is an error naming the line."""
    path = Path(path)
    times: list[float] = []
    columns: dict[str, list[float]] = {f: [] for f in FUELS}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("timestamp", *FUELS) if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(f"{path}: not an EIA-930 file, missing columns {missing}")
        for line, row in enumerate(reader, start=2):
            try:
                times.append(dt.datetime.fromisoformat(row["timestamp"]).timestamp())
                for f in FUELS:
                    columns[f].append(float(row[f]) if row[f] else 0.0)
            except ValueError as exc:
                raise TraceError(f"{path}:{line}: {exc}") from exc
    return GenerationMix(path.stem, np.array(times), {f: np.array(v) for f, v in columns.items()})
