"""The control strategies a simulation compares (a module of its own so that the command line can
name them without loading the simulator and the forecaster runtime)."""

from __future__ import annotations

from typing import Literal

Strategy = Literal["none", "reactive", "persistence", "student", "oracle"]
STRATEGIES: tuple[Strategy, ...] = ("none", "reactive", "persistence", "student", "oracle")
