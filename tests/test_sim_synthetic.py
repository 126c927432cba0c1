"""Synthetic job power: deterministic series with the phases asked for, a scenario's ``synthetic``
section validated field by field, and the bundled synthetic site simulating without shared data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from gridshift.cli import main
from gridshift.sim import scenario as sc
from gridshift.sim.synthetic import SyntheticJobs, draw, generate

# One kind of job, every parameter pinned: a run that trains all along (no evaluation, no stall).
PINNED = SyntheticJobs(idle_watts_per_gpu=(70.0, 70.0), compute_watts_per_gpu=(550.0, 550.0),
                       iteration=(0.5, 0.5), ripple=(0.0, 0.0), checkpoint_interval=(120.0, 120.0),
                       checkpoint=(20.0, 20.0), checkpoint_level=(0.15, 0.15),
                       evaluation_interval=(1e7, 1e7), evaluation=(10.0, 10.0), evaluation_level=(0.5, 0.5),
                       stalls_per_hour=(0.0, 0.0), stall=(10.0, 10.0), stall_level=(0.0, 0.0),
                       warmup=(60.0, 60.0), warmup_level=(0.1, 0.1), ramp_up=(10.0, 10.0), ramp_down=(5.0, 5.0),
                       run=(1e7, 1e7), gap=(30.0, 30.0), noise=(0.0, 0.0), jitter=0.0)
IDLE_W, COMPUTE_W = 8 * 70.0, 8 * 550.0


def _level(watts: np.ndarray) -> np.ndarray:
    """Watts as the fraction of the way from PINNED's idle to its compute power."""
    return (watts - IDLE_W) / (COMPUTE_W - IDLE_W)


def _starts(below: np.ndarray) -> np.ndarray:
    """The seconds at which ``below`` turns true."""
    return np.flatnonzero(below[1:] & ~below[:-1]) + 1


def test_a_seed_gives_the_same_series_and_each_series_is_its_own_job() -> None:
    first = generate(SyntheticJobs(), 3, 1800, 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, generate(SyntheticJobs(), 3, 1800, 7), strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(first, generate(SyntheticJobs(), 3, 1800,
                                                                     np.random.default_rng(7)), strict=True))
    assert np.array_equal(generate(SyntheticJobs(), 5, 1800, 7)[2], first[2]), "series k whatever the count"
    assert not np.array_equal(generate(SyntheticJobs(), 1, 1800, 8)[0], first[0])
    assert [len(s) for s in first] == [1800] * 3
    assert len({float(s.mean()) for s in first}) == 3


def test_the_power_stays_between_idle_and_the_highest_compute_level() -> None:
    spec = SyntheticJobs()
    for gpus in (8, 4):
        low, high = spec.watts_range(gpus)
        series = generate(spec, 10, 2 * 3600, 1, gpus_per_node=gpus)
        assert min(s.min() for s in series) >= low and max(s.max() for s in series) <= high
        trains = np.concatenate([s[s > np.percentile(s, 60)] for s in series])
        assert 375 * gpus * 0.95 < np.median(trains) < 600 * gpus * 1.05, "compute level scales with the GPUs"


def test_a_run_idles_loads_ramps_up_and_dips_at_every_checkpoint() -> None:
    watts = generate(PINNED, 1, 3600, 0)[0]
    level = _level(watts)
    assert np.allclose(level[:30], 0), "the gap before the run: idle"
    assert np.allclose(level[31:90], 0.1), "loading (warm-up) at its level"
    assert np.all(np.diff(level[90:101]) > 0) and np.allclose(level[101:200], 1), "ramp up, then compute"
    dips = _starts(level < 0.5)
    assert np.all(np.diff(dips) == 120), "a checkpoint every 120 s"
    assert len(dips) == (3600 - 100) // 120
    assert np.allclose(level[dips[0]:dips[0] + 19], 0.15) and level[dips[0] + 20] == 1, "each lasts 20 s"


def test_jittered_checkpoints_keep_their_interval_on_average() -> None:
    watts = generate(dataclasses.replace(PINNED, jitter=0.2, noise=(0.02, 0.02)), 1, 4 * 3600, 3)[0]
    spacing = np.diff(_starts(_level(watts) < 0.5))
    assert np.mean(spacing) == pytest.approx(120, rel=0.03)
    assert spacing.min() >= 0.8 * 120 - 1 and spacing.max() <= 1.2 * 120 + 1 and spacing.std() > 5


def test_the_ripple_shows_at_1_s_only_when_the_step_is_slower_than_a_second() -> None:
    fast, slow = (generate(dataclasses.replace(PINNED, iteration=(p, p), ripple=(0.2, 0.2),
                                               checkpoint_interval=(1e7, 1e7)), 1, 1200, 0)[0][200:]
                  for p in (0.5, 5.0))
    assert np.ptp(fast) < 1e-6, "a 0.5 s step averages out in every second"
    assert np.ptp(_level(slow)) > 0.1
    autocorrelation = [np.corrcoef(slow[:-lag], slow[lag:])[0, 1] for lag in range(1, 8)]
    assert int(np.argmax(autocorrelation)) + 1 == 5, "the ripple repeats every step"


def test_stalls_come_at_about_the_rate_asked() -> None:
    spec = dataclasses.replace(PINNED, checkpoint_interval=(1e7, 1e7), stalls_per_hour=(20.0, 20.0),
                               stall=(5.0, 5.0), stall_level=(0.02, 0.02))
    hours, series = 2, generate(spec, 6, 2 * 3600 + 100, 5)
    stalls = sum(len(_starts(_level(s[100:]) < 0.6)) for s in series)  # a 1 s stall shows half way
    expected = 20 * hours * len(series)
    assert 0.75 * expected < stalls < 1.15 * expected  # overlapping stalls count once
    assert min(_level(s[100:]).min() for s in series) == pytest.approx(0.02), "a stall drops to near idle"


def test_each_job_draws_its_parameters_inside_the_ranges() -> None:
    rng = np.random.default_rng(0)
    jobs = [draw(SyntheticJobs(), rng, gpus_per_node=4) for _ in range(50)]
    assert all(4 * 375 <= j.compute_w <= 4 * 600 and 60 <= j.checkpoint_interval_s <= 300 for j in jobs)
    assert len({j.checkpoint_interval_s for j in jobs}) == 50


@pytest.mark.parametrize("change", [{"checkpoint_interval": (600.0, 60.0)}, {"noise": (0.0, 0.5)},
                                    {"ripple": (0.0, 1.5)}, {"run": (0.0, 60.0)},
                                    {"compute_watts_per_gpu": (60.0, 100.0)}])
def test_bad_ranges_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(change))):
        SyntheticJobs(**change)  # type: ignore[arg-type]


# ---- the scenario's synthetic section ---------------------------------------------------------

def _synthetic_scenario(**synthetic: object) -> str:
    doc = yaml.safe_load(sc.bundled()["synthetic-training"].read_text())
    doc["synthetic"] = {"count": 3, "seconds": "20min", **synthetic}
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(("synthetic", "message"), [
    ({"checkpointInterval": ["10min", "1min"]}, "synthetic.checkpointInterval: Value error, low 600 is above high 60"),
    ({"computeWattsPerGpu": ["50W", "60W"]}, "synthetic.computeWattsPerGpu: Value error, low 50 is not above"),
    ({"ripple": [0, 1.5]}, "synthetic.ripple[1]"),
    ({"stall": ["0s", "3s"]}, "synthetic.stall[0]"),
    ({"evaluation": "1min"}, "synthetic.evaluation"),
    ({"checkpointIntervall": ["1min", "2min"]}, "synthetic.checkpointIntervall"),
    ({"seconds": "10s"}, "synthetic.seconds"),
])
def test_a_bad_synthetic_field_is_named_with_its_path(synthetic: dict[str, object], message: str) -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.parse(_synthetic_scenario(**synthetic), "site.yaml")
    assert message in str(err.value) and str(err.value).startswith("site.yaml: ")


def test_every_bad_range_is_named_at_once() -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.parse(_synthetic_scenario(checkpoint=["1min", "10s"], run=["2h", "1h"]))
    assert "synthetic.checkpoint: " in str(err.value) and "synthetic.run: " in str(err.value)


def test_the_section_holds_the_generators_parameters_with_its_defaults() -> None:
    section = sc.SyntheticSection()
    assert section.jobs() == SyntheticJobs()
    assert set(sc.SyntheticSection.model_fields) == {"count", "seconds"} | {
        f.name for f in dataclasses.fields(SyntheticJobs)}


def test_training_needs_trace_files_or_a_synthetic_section() -> None:
    doc = yaml.safe_load(_synthetic_scenario())
    del doc["synthetic"]
    with pytest.raises(sc.ScenarioError, match="traces or a synthetic section"):
        sc.parse(yaml.safe_dump(doc))


def test_job_traces_are_the_files_then_the_generated_series(tmp_path: Path) -> None:
    rows = "\n".join(f"{1_767_225_600 + s},{3000 + 1000 * (s // 60 % 2)}" for s in range(900))
    (tmp_path / "node-0.csv").write_text("timestamp,value\n" + rows + "\n")
    synthetic = sc.parse(_synthetic_scenario(), "a")
    doc = yaml.safe_load(_synthetic_scenario())
    files_only = sc.parse(yaml.safe_dump({**doc, "traces": ["node-*.csv"], "synthetic": None}), "b")
    both = sc.parse(yaml.safe_dump({**doc, "traces": ["node-*.csv"]}), "c")

    files = files_only.job_traces(tmp_path)
    assert len(files) == 1 and np.array_equal(files[0], sc.read_traces(files_only, tmp_path)[0])
    generated = synthetic.job_traces(tmp_path / "not-there")
    assert [len(s) for s in generated] == [1200] * 3
    mixed = both.job_traces(tmp_path)
    assert len(mixed) == 4 and np.array_equal(mixed[0], files[0])
    assert all(np.array_equal(a, b) for a, b in zip(mixed[1:], generated, strict=True)), "seeded by the scenario"
    reseeded = sc.parse(yaml.safe_dump({**doc, "seed": 5}), "d").job_traces()
    assert not np.array_equal(reseeded[0], generated[0])
    with pytest.raises(sc.ScenarioError, match="give a trace directory"):
        files_only.job_traces(None)


def test_the_generated_watts_follow_the_sites_gpus_per_node() -> None:
    doc = yaml.safe_load(_synthetic_scenario())
    doc["site"]["gpusPerNode"] = 4
    traces = sc.parse(yaml.safe_dump(doc)).job_traces()
    assert max(t.max() for t in traces) <= SyntheticJobs().watts_range(4)[1]


def test_the_bundled_synthetic_site_simulates_without_shared_data(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    scn = sc.load("synthetic-training")
    assert not scn.file.traces and scn.file.synthetic is not None and scn.file.site.nodes == 64
    args = ["simulate", "--scenario", "synthetic-training", "--strategies", "none,reactive", "--duration", "30min",
            "--trace-dir", str(tmp_path / "no-data"), "--json", "--quiet"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    none, reactive = out["results"]["none"], out["results"]["reactive"]
    assert out["jobs"] > 0 and none["load_above_trigger_kwh"] > 0, "control has something to do"
    assert reactive["energy_above_cap_kwh"] < none["energy_above_cap_kwh"]
