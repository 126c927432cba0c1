"""Bars of the migration evaluation: non-renewable energy, delay and aborted moves per strategy,
one group per WAN regime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridshift.plots import pyplot, save


def plot_comparison(results: dict[str, dict[str, dict[str, float]]], out: Path) -> Path:
    """``results[regime][strategy]`` -> summary dict (see ``gridshift.sim.migration.compare``)."""
    plt = pyplot()

    regimes = list(results)
    strategies = list(next(iter(results.values())))
    metrics = [("nonrenewable_kwh", "non-renewable energy (kWh)"), ("mean_delay_h", "mean job delay (h)"),
               ("aborted_moves", "aborted moves")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(13, 4))
    width = 0.8 / len(strategies)
    x = np.arange(len(regimes))
    for ax, (key, label) in zip(axes, metrics, strict=True):
        for i, strategy in enumerate(strategies):
            ax.bar(x + i * width, [results[r][strategy][key] for r in regimes], width, label=strategy)
        ax.set_xticks(x + width * (len(strategies) - 1) / 2, regimes, fontsize=8)
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("Following renewable surplus: stay, energy-only chasing, feasibility-aware migration")
    return save(fig, out)
