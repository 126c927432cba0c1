"""Figures written to files (matplotlib, the `plot` extra); the models they draw live elsewhere.
``pyplot()`` and ``save()`` are the one place that sets up the file backend and writes PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (imported on first use)."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plotting needs matplotlib: pip install 'gridshift[plot]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path, dpi: int = 110) -> Path:
    """Lay out, write (creating folders) and close a figure."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out
