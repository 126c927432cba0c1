"""A simulated site under each strategy: grid power against the cap over time (minute maxima) and
the cost figures side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridshift.plots import pyplot, save


def plot_simulation(name: str, cap_w: float, grids: dict[str, np.ndarray], summaries: dict[str, dict[str, float]],
                    out: Path) -> Path:
    """``grids[strategy]``: grid watts per second; ``summaries[strategy]``: ``Result.summary()``."""
    plt = pyplot()
    fig = plt.figure(figsize=(13, 7))
    top = fig.add_subplot(2, 1, 1)
    for strategy, grid in grids.items():
        minutes = len(grid) // 60
        per_min = grid[:minutes * 60].reshape(minutes, 60).max(axis=1) if minutes else grid
        top.plot(np.arange(len(per_min)) / 60.0, per_min / 1000.0, lw=0.8, label=strategy)
    top.axhline(cap_w / 1000.0, color="k", ls="--", lw=1, label="cap")
    top.set_xlabel("hours")
    top.set_ylabel("grid kW (max per minute)")
    top.legend(fontsize=8, ncol=6)
    metrics = [("energy_above_cap_kwh", "kWh above the cap"), ("job_delay_gpu_h", "job delay (GPU-h)"),
               ("inference_shed_replica_h", "inference shed (replica-h)"),
               ("battery_discharged_kwh", "battery kWh out")]
    strategies = list(summaries)
    for k, (key, label) in enumerate(metrics):
        ax = fig.add_subplot(2, len(metrics), len(metrics) + k + 1)
        ax.bar(range(len(strategies)), [float(summaries[s][key]) for s in strategies])
        ax.set_xticks(range(len(strategies)), strategies, rotation=30, fontsize=7)
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"gridshift simulate: {name}")
    fig.tight_layout()
    return save(fig, out)
