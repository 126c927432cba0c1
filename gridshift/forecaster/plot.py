"""``gridshift forecast plot``: forecast versus actual, and error by horizon, as one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridshift.forecaster.adapt import adapted_medians
from gridshift.forecaster.baselines import PersistenceBaseline
from gridshift.forecaster.metrics import make_windows
from gridshift.forecaster.runtime import Forecaster
from gridshift.plots import pyplot, save
from gridshift.telemetry.series import Series


def plot_forecast(model: Forecaster, series: Series, out: Path, confidence: float = 0.9) -> Path:
    plt = pyplot()
    meta = model.meta
    steps = meta.horizon_steps
    x, y, origins = make_windows(series.values, meta.window, steps)
    if len(x) == 0:
        raise ValueError(f"{series.name}: too short to plot ({len(series)} steps)")
    fc = model.predict(x)
    offline = fc.p50
    p50 = adapted_medians(x, offline, y, tuple(steps), series.step)  # as the operator runs it
    t = np.arange(len(series.values)) * series.step
    fig, axes = plt.subplots(2, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [2, 1]})
    ax = axes[0]
    ax.plot(t, series.values / 1000, color="black", lw=1, label="actual")
    k = len(steps) - 1
    when = (origins + steps[k]) * series.step
    ax.plot(when, p50[:, k] / 1000, lw=1, label=f"p50 adapted online, {meta.horizons_s[k]:g} s ahead")
    if fc.upper is not None:
        ax.plot(when, (fc.upper_at(confidence) + p50 - offline)[:, k] / 1000, lw=0.8, ls="--",
                label=f"upper ({confidence:.0%}), {meta.horizons_s[k]:g} s ahead")
    ax.set_ylabel("power (kW)")
    ax.set_title(f"{series.name}: forecast vs actual")
    ax.legend(loc="upper right")
    pos = np.arange(len(steps))
    bars = {"student": p50, "student offline": offline,
            "persistence": PersistenceBaseline(meta.window, tuple(steps)).predict(x)}
    for i, (label, pred) in enumerate(bars.items()):
        axes[1].bar(pos + 0.27 * (i - 1), np.abs(pred - y).mean(axis=0), 0.27, label=label)
    axes[1].set_xticks(pos, [f"{h:g} s" for h in meta.horizons_s])
    axes[1].set_ylabel("MAE (W)")
    axes[1].legend()
    return save(fig, out)
