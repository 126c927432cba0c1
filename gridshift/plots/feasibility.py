"""The feasibility domain of migration: checkpoint size against WAN bandwidth, one time boundary
per renewable window length, and the move being assessed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridshift.planner.feasibility import Move, Verdict, max_checkpoint_bytes
from gridshift.plots import pyplot, save

WINDOWS_S = (900.0, 3600.0, 3 * 3600.0, 8 * 3600.0)


def plot_domain(move: Move, verdict: Verdict, out: Path) -> Path:
    plt = pyplot()

    bandwidth = np.logspace(8, 11.6, 200)  # 0.1 to 400 Gbit/s
    fig, ax = plt.subplots(figsize=(7.5, 5))
    windows = sorted({*WINDOWS_S, move.window_s})
    for w in windows:
        limit = [max_checkpoint_bytes(b, w, move.margin, move.checkpoint_write_Bps, move.restore_read_Bps)
                 for b in bandwidth]
        style = "-" if w == move.window_s else ":"
        ax.plot(bandwidth / 1e9, np.array(limit) / 1e9, style, lw=1.6 if w == move.window_s else 1,
                label=f"window {w / 3600:g} h" + (" (this move)" if w == move.window_s else ""))
    limit = [max_checkpoint_bytes(b, move.window_s, move.margin, move.checkpoint_write_Bps, move.restore_read_Bps)
             for b in bandwidth]
    ax.fill_between(bandwidth / 1e9, 1e-3, np.array(limit) / 1e9, alpha=0.12, label="moves in time (this window)")
    ax.scatter([move.bandwidth_bps / 1e9], [move.checkpoint_bytes / 1e9], s=60, zorder=5,
               color="green" if verdict.feasible else "red",
               label=f"this move: {'feasible' if verdict.feasible else 'not feasible'} ({verdict.binding} binds)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1, 1e5)
    ax.set_xlabel("WAN bandwidth (Gbit/s)")
    ax.set_ylabel("checkpoint size (GB)")
    ax.set_title(f"Migration feasibility: move within {1 - move.margin:.0%} of the window")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, out)
