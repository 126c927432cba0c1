"""Scenario files: validated field by field, their policy section read as a real PowerPolicy spec,
and ``gridshift simulate`` running every strategy on one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from gridshift.cli import main
from gridshift.sim import scenario as sc
from tests.conftest import SHARED_DATA

SMALL = """
name: small
seed: 3
start: "2026-01-05T14:00:00Z"
duration: 40min
traces: [node-*.csv]
site: {nodes: 6, idleNodeWatts: 800W, otherLoadWatts: 2kW}
budget: {capOfPeak: 0.9, triggerFraction: 0.95}
training:
  meanInterarrival: 4min
  sizes: [1, 2]
  work: [5min, 30min]
  checkpoint: [20s, 40s]
  restore: [30s, 60s]
inference:
  - {name: chat, replicas: 4, floor: 1, wattsPerReplica: 2kW, drain: 10s, startup: 30s}
battery: {capacity: 2kWh, maxCharge: 2kW, maxDischarge: 4kW}
policy:
  forecast: {horizonSeconds: 10, confidence: 0.8}
  safety: {periodSeconds: 5, cooldownSeconds: 30}
"""


def _traces(folder: Path) -> Path:
    """Two node traces in the generic timestamp,value format: compute phases and dips."""
    rng = np.random.default_rng(0)
    for k in range(2):
        t = np.arange(900)
        watts = 3_000 + 1_200 * (np.sin(t / (20 + 10 * k)) > 0) + rng.normal(0, 80, len(t))
        rows = "\n".join(f"{1_767_225_600 + s},{w:.1f}" for s, w in zip(t, watts, strict=True))
        (folder / f"node-{k}.csv").write_text("timestamp,value\n" + rows + "\n")
    return folder


def _with(text: str, **changes: object) -> str:
    doc = yaml.safe_load(text)
    for path, value in changes.items():
        node = doc
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(("changes", "field"), [
    ({"training__work": ["2h", "1h"]}, "work"),
    ({"battery__capacity": "40kW"}, "battery.capacity"),
    ({"site__nodes": 1}, "training.sizes"),
    ({"policy__safety__periodSeconds": 0}, "policy.safety.periodSeconds"),
    ({"policy__forecast__confidense": 0.9}, "policy.forecast.confidense"),
    ({"budget__capWatts": "300kW"}, "capWatts"),
    ({"inference": [{"name": "chat", "replicas": 2, "floor": 3, "wattsPerReplica": "1kW"}]}, "inference[0]"),
    ({"duration": "forever"}, "duration"),
])
def test_a_bad_field_is_named_in_the_error(changes: dict[str, object], field: str) -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.parse(_with(SMALL, **changes), "small.yaml")
    assert field in str(err.value) and str(err.value).startswith("small.yaml: ")


def test_the_policy_section_is_the_operators_spec_in_planner_units() -> None:
    scn = sc.parse(SMALL)
    setup = scn.setup(20_000)
    assert (setup.cap_w, setup.trigger_w) == (20_000, pytest.approx(19_000))
    assert setup.period_s == 5 and setup.horizon_s == 10 and setup.confidence == 0.8
    assert setup.ladder == ("battery", "scaleDown", "suspend")
    assert setup.limits is not None and setup.limits.cooldown_s == 30
    assert setup.workload_confidence == 0.5, "a battery stands in front: workloads plan on the median"
    assert setup.battery is not None and setup.battery.physics.capacity_wh == 2_000
    assert setup.endurance_s == 7_200, "spec.storage.enduranceSeconds defaults to two hours"
    paced_off = sc.parse(_with(SMALL, policy__storage={"energyStorageRef": "ess", "enduranceSeconds": 0})).setup(20_000)
    assert paced_off.endurance_s == 0


def test_the_bundled_scenarios_load() -> None:
    assert {"training-64", "mixed", "synthetic-training"} <= set(sc.bundled())
    for name in sc.bundled():
        scn = sc.load(name)
        assert scn.seconds == 86_400 and (scn.file.traces or scn.file.synthetic)


def test_simulate_prints_one_block_per_strategy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "small.yaml").write_text(SMALL)
    args = ["simulate", "--scenario", str(tmp_path / "small.yaml"), "--trace-dir", str(_traces(tmp_path)), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["results"]) == {"none", "reactive", "persistence", "student", "oracle"}
    none, oracle = out["results"]["none"], out["results"]["oracle"]
    assert none["energy_above_cap_kwh"] > 0 and oracle["energy_above_cap_kwh"] < none["energy_above_cap_kwh"]
    for block in out["results"].values():
        assert {"job_delay_gpu_h", "inference_shed_replica_h", "peak_demand_kw", "battery_cycles",
                "worst_overshoot_w", "longest_overshoot_s", "actions"} <= set(block)
    assert main(args) == 0 and json.loads(capsys.readouterr().out) == out, "deterministic with the seed"


def test_simulate_names_a_missing_trace_and_an_unknown_scenario(tmp_path: Path, capsys) -> None:
    (tmp_path / "small.yaml").write_text(SMALL)
    assert main(["simulate", "--scenario", str(tmp_path / "small.yaml"), "--trace-dir", str(tmp_path)]) == 1
    assert re.search(r"^gridshift: .*traces\[0\]: no file matches 'node-\*.csv'", capsys.readouterr().err)
    assert main(["simulate", "--scenario", "no-such-site"]) == 1
    assert re.search(r"bundled ones are .*training-64", capsys.readouterr().err)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the shared traces are not at {SHARED_DATA}")
def test_the_bundled_training_site_on_real_traces() -> None:
    scn = sc.load("training-64")
    site = scn.site(scn.job_traces(SHARED_DATA), seconds=3600)
    assert len(site.bank) == 5 and site.nodes == 64
    run = sc.compare(scn, site, ["none", "oracle"])
    none, oracle = run.results["none"], run.results["oracle"]
    assert none.energy_above_cap_kwh > 0
    assert oracle.energy_above_cap_kwh == 0 and oracle.job_delay_gpu_h == 0, \
        "with a perfect forecast the battery alone covers this site's peaks"


def test_a_binary_scenario_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    binary = tmp_path / "scenario.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(sc.ScenarioError, match="not a text file"):
        sc.load(binary)
