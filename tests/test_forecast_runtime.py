"""The ONNX runtime half: the bundled model loads and forecasts; broken models fail clearly and
the operator's loader falls back to persistence. No torch here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gridshift.forecaster.runtime import (
    Forecaster,
    ModelError,
    Persistence,
    default_model_dir,
    load_or_persistence,
)
from tests.conftest import SHARED_DATA

H100 = SHARED_DATA / "gpu-power" / "h100-8gpu-llm-training"


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(default_model_dir(), dst)
    return dst


def test_default_model_is_small_and_described():
    directory = default_model_dir()
    size = sum(p.stat().st_size for p in directory.iterdir())
    assert size < 200_000, f"bundled model is {size} bytes"
    meta = json.loads((directory / "model.json").read_text())
    assert meta["training"]["seed"] == 0
    assert meta["training"]["fingerprint"]
    assert meta["training"]["teacher_parameters"] >= 50 * meta["training"]["student_parameters"]


def test_forecast_one_window_and_a_batch():
    model = Forecaster.load("default")
    w = model.meta.window
    flat = np.full(w, 3000.0)
    one = model.predict(flat)
    assert one.p50.shape == (1, len(model.meta.horizons_s))
    assert one.upper is not None and one.upper.shape == (1, len(model.meta.quantiles), len(model.meta.horizons_s))
    assert np.all(np.abs(one.p50 - 3000.0) < 600), one.p50  # a flat load stays near its level
    assert np.all(one.upper_at(0.9) >= one.p50)
    batch = model.predict(np.random.default_rng(0).uniform(1000, 4500, size=(5000, w)))
    assert batch.p50.shape == (5000, len(model.meta.horizons_s))
    assert np.all(np.isfinite(batch.p50))
    # Higher confidence never lowers the bound.
    assert np.all(batch.upper_at(0.99) >= batch.upper_at(0.8) - 1e-3)


def test_scale_free_forecast():
    """Normalisation is inside the graph: a site 1000x larger gets a 1000x forecast."""
    model = Forecaster.load("default")
    rng = np.random.default_rng(1)
    w = rng.uniform(1200, 4400, size=(3, model.meta.window))
    small = model.predict(w).p50
    large = model.predict(w * 1000).p50
    np.testing.assert_allclose(large, small * 1000, rtol=2e-3)


def test_wrong_window_and_nan_are_rejected():
    model = Forecaster.load("default")
    with pytest.raises(ValueError, match=f"{model.meta.window} samples"):
        model.predict(np.ones(7))
    bad = np.full(model.meta.window, 100.0)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)


def test_missing_directory_and_metadata(tmp_path: Path, model_copy: Path):
    with pytest.raises(ModelError, match="model directory not found"):
        Forecaster.load(tmp_path / "nope")
    (model_copy / "model.json").unlink()
    with pytest.raises(ModelError, match="metadata file missing"):
        Forecaster.load(model_copy)


def test_truncated_onnx_file_is_reported(model_copy: Path):
    onnx = model_copy / "student.onnx"
    onnx.write_bytes(onnx.read_bytes()[:500])
    with pytest.raises(ModelError, match="checksum differs"):
        Forecaster.load(model_copy)
    meta = json.loads((model_copy / "model.json").read_text())
    meta["files"]["student"].pop("sha256")
    (model_copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Forecaster.load(model_copy)


def test_metadata_that_disagrees_with_the_graph(model_copy: Path):
    meta = json.loads((model_copy / "model.json").read_text())
    meta["window"] = meta["window"] + 1
    (model_copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="windows of"):
        Forecaster.load(model_copy)


def test_foreign_format_is_refused(model_copy: Path):
    meta = json.loads((model_copy / "model.json").read_text())
    meta["format"] = "something-else/v9"
    (model_copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format is 'something-else/v9'"):
        Forecaster.load(model_copy)


def test_operator_falls_back_to_persistence_with_the_reason(tmp_path: Path):
    model, reason = load_or_persistence(tmp_path / "missing")
    assert isinstance(model, Persistence)
    assert "not found" in reason
    fc = model.predict(np.array([[1.0, 2.0, 3.0]]))
    assert fc.p50.tolist() == [[3.0, 3.0, 3.0]] and fc.upper is None
    model, reason = load_or_persistence("default")
    assert isinstance(model, Forecaster) and reason is None


def test_runtime_never_imports_torch():
    code = ("import sys, numpy as np; from gridshift.forecaster.runtime import Forecaster; "
            "m = Forecaster.load('default'); m.predict(np.ones(m.meta.window) * 1000); "
            "from gridshift.forecaster import evaluate; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not H100.is_dir(), reason=f"shared traces not found at {H100}")
def test_evaluate_cli_json_schema(capsys):
    from gridshift.cli import main

    assert main(["forecast", "evaluate", "--model", "default", "--json",
                 "--data", str(H100 / "run-2025-07-27T00-34-node.csv")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"step_s", "horizons_s", "series", "points", "origins_whole_run", "metrics",
                           "in_sample_files", "event_caps_w", "events", "event_counts"}
    assert report["events"]["student"]["alarm_on"] == "bound" and report["events"]["student"]["onsets"] > 0
    assert report["series"] == 1 and report["points"] > 100
    assert report["in_sample_files"] == [], "the node total is not one of the model's training files"
    for name in ("student", "student_no_kd", "persistence", "seasonal_naive", "moving_average", "dlinear",
                 "periodic_naive"):
        assert name in report["metrics"], name
        for h in report["horizons_s"]:
            block = report["metrics"][name][f"{h:g}"]
            assert block["mae"] > 0 and block["rmse"] >= block["mae"]
    assert 0 <= report["metrics"]["student"]["30"]["coverage"] <= 1
    assert report["metrics"]["persistence"]["30"]["coverage"] is None


def test_evaluate_cli_names_a_missing_file(tmp_path: Path, capsys):
    from gridshift.cli import main

    assert main(["forecast", "evaluate", "--data", str(tmp_path / "nope.csv")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_evaluate_cli_names_a_binary_file_and_reads_a_directory(tmp_path: Path, capsys):
    from gridshift.cli import main

    binary = tmp_path / "dump.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    assert main(["forecast", "evaluate", "--data", str(binary)]) == 1
    assert f"{binary}: not a text file" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["forecast", "evaluate", "--data", str(empty)]) == 1
    assert f"{empty}: a directory with no trace files" in capsys.readouterr().err
    runs = tmp_path / "runs"
    runs.mkdir()
    t = np.arange(900)
    for k in range(2):
        (runs / f"run-{k}.csv").write_text("timestamp,value\n" + "\n".join(
            f"{i},{4400 + 100 * k if i % 40 < 25 else 1200}" for i in t) + "\n")
    (runs / "notes.txt").write_text("not a trace")
    assert main(["forecast", "evaluate", "--data", str(runs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["series"] == 2, "each trace file of the directory, nothing else"


def test_evaluate_cli_names_a_short_file_with_its_length_and_needs_no_more_than_it_says(tmp_path: Path, capsys):
    """window + longest horizon + 1 samples are enough; one fewer is refused naming the file and both lengths."""
    from gridshift.cli import main

    def trace(name: str, n: int) -> Path:
        path = tmp_path / name
        path.write_text("timestamp,value\n" + "\n".join(f"{i},{1000 + 10 * (i % 20)}" for i in range(n)) + "\n")
        return path

    short, enough = trace("short.csv", 150), trace("enough.csv", 151)  # the bundled model: 120 + 30 + 1
    assert main(["forecast", "evaluate", "--data", str(short)]) == 1
    err = capsys.readouterr().err
    assert f"{short}: its longest gap-free stretch is 150 samples" in err and "needs 151" in err
    assert main(["forecast", "evaluate", "--data", str(enough), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["series"] == 1


def test_evaluate_cli_stops_at_a_garbled_file_or_skips_it_when_asked(tmp_path: Path, capsys):
    from gridshift.cli import main

    good = tmp_path / "good.csv"
    good.write_text("timestamp,value\n" + "\n".join(f"{i},{1000 + 10 * (i % 20)}" for i in range(400)) + "\n")
    garbled = tmp_path / "garbled.csv"
    garbled.write_text("timestamp,value\n0,1000\n1,1010\n\0\0\0\0garbage\n")
    assert main(["forecast", "evaluate", "--data", str(garbled), "--data", str(good)]) == 1
    assert str(garbled) in capsys.readouterr().err
    assert main(["forecast", "evaluate", "--skip-bad-files", "--json", "--data", str(garbled),
                 "--data", str(good)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["series"] == 1 and f"skipped {garbled}" in captured.err


def test_plot_writes_a_png(tmp_path: Path):
    from gridshift.cli import main

    t = np.arange(600)
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,value\n" + "\n".join(f"{i},{4400 if i % 40 < 25 else 1200}" for i in t) + "\n")
    out = tmp_path / "plot.png"
    assert main(["forecast", "plot", "--data", str(trace), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize(("argv", "message"), [
    (["--prune", "1.5"], "Invalid value for '--prune': 1.5 is not in the range 0.0<=x<1.0"),
    (["--window", "0"], "Invalid value for '--window': 0 is not in the range x>=1"),
    (["--step", "-1"], "Invalid value for '--step': -1.0 is not in the range x>0"),
    (["--horizons", "5,x"], "Invalid value for '--horizons': expected comma-separated numbers"),
])
def test_train_rejects_bad_options_before_training(tmp_path: Path, capsys, argv, message):
    from gridshift.cli import main

    assert main(["forecast", "train", "--data", "x.csv", "--out", str(tmp_path / "m"), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(not H100.is_dir(), reason=f"shared traces not found at {H100}")
def test_scores_on_a_training_file_are_called_in_sample(tmp_path: Path) -> None:
    """model.json lists the files the model trained on: a copy under another name is caught too."""
    from gridshift.forecaster.runtime import training_overlap

    meta = Forecaster.load("default").meta
    trained = H100 / "run-2025-07-27T00-34-per-gpu.csv"
    renamed = tmp_path / "site.csv"
    shutil.copy(trained, renamed)
    unseen = H100 / "run-2025-07-27T00-34-node.csv"
    assert training_overlap(meta, [trained, renamed, unseen]) == [str(trained), str(renamed)]
