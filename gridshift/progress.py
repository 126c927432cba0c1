"""A one-line text progress bar per phase, for long commands (training, simulation). No
dependencies, so every layer may report through it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[str, int, int, str], None]  # (phase label, done, total, note)


def text_progress(stream: TextIO = sys.stderr) -> Progress:
    """A one-line progress bar per phase; a new label starts a new line."""
    state: dict[str, str | None] = {"label": None}

    def show(label: str, done: int, total: int, note: str) -> None:
        if state["label"] not in (None, label):
            stream.write("\n")
        state["label"] = label
        width = 30
        filled = int(width * done / max(total, 1))
        stream.write(f"\r{label:<22} [{'#' * filled}{'.' * (width - filled)}] {done:>4}/{total:<4} {note}")
        stream.flush()

    return show
