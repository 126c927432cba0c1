"""The training half, on small synthetic load so it runs in seconds: ONNX round trip, conformal
calibration, pruning, quantisation, determinism, distillation switches."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from gridshift.forecaster.runtime import Forecaster  # noqa: E402
from gridshift.forecaster.train.distill import DistillWeights  # noqa: E402
from gridshift.forecaster.train.fit import (  # noqa: E402
    TrainConfig,
    fit_models,
    predict_student,
    predict_teacher,
    split_windows,
    time_warp,
    write_model_dir,
)
from gridshift.telemetry.series import Series  # noqa: E402

pytestmark = pytest.mark.train

CFG = TrainConfig(window=40, horizons_s=(2.0, 5.0), teacher_epochs=3, student_epochs=6, teacher_dim=8,
                  teacher_layers=1, student_hidden=8, batch=64, warp_factors=(0.8,), levels=(0.8, 0.9))


def synthetic(n: int = 700, period: int = 30, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    v = np.where((t % period) < 18, 4400.0, 1200.0) + rng.normal(0, 40, n)
    return Series(0.0, 1.0, v, f"synthetic-{seed}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    series = [synthetic(seed=0), synthetic(period=40, seed=1)]
    result = fit_models(series, CFG)
    data = tmp_path_factory.mktemp("data") / "trace.csv"
    data.write_text("timestamp,value\n0,1\n")
    out = write_model_dir(result, tmp_path_factory.mktemp("model"), [data], prune=0.5, quantize=True)
    return series, result, out


def test_onnx_runtime_agrees_with_torch(trained):
    series, result, out = trained
    x = split_windows(series, CFG).cal_x[:200]
    model = Forecaster.load(out)
    p50_t, upper_t = predict_student(result.students["student"], x)
    fc = model.predict(x)
    np.testing.assert_allclose(fc.p50, p50_t, rtol=1e-4, atol=0.05)
    np.testing.assert_allclose(fc.upper, upper_t, rtol=1e-4, atol=0.05)
    teacher = model.predict(x, network="teacher").p50
    np.testing.assert_allclose(teacher, predict_teacher(result.teacher, x), rtol=1e-4, atol=0.05)


def test_model_directory_lists_every_network_with_checksums(trained):
    _, result, out = trained
    meta = json.loads((out / "model.json").read_text())
    assert set(meta["files"]) == {"student", "student_no_kd", "student_pruned", "student_int8", "teacher"}
    assert meta["files"]["student_pruned"]["zeroed_fraction"] == pytest.approx(0.5, abs=0.01)
    assert meta["training"]["teacher_parameters"] == result.parameters["teacher"]
    for entry in meta["files"].values():
        assert len(entry["sha256"]) == 64


def test_conformal_upper_bound_covers_the_calibration_windows(trained):
    series, result, _ = trained
    split = split_windows(series, CFG)
    _, upper = predict_student(result.students["student"], split.cal_x)
    hs = [h - 1 for h in CFG.horizon_steps]
    for qi, level in enumerate(CFG.levels):
        covered = np.mean(split.cal_y[:, hs] <= upper[:, qi, :], axis=0)
        assert np.all(covered >= level - 1e-9), (level, covered)


def test_int8_and_pruned_variants_stay_close(trained):
    series, _, out = trained
    x = split_windows(series, CFG).cal_x
    model = Forecaster.load(out)
    base = model.predict(x).p50
    for name in ("student_int8", "student_pruned"):
        other = model.predict(x, network=name).p50
        assert np.all(np.isfinite(other))
        assert np.mean(np.abs(other - base)) < 0.5 * np.mean(np.abs(base - base.mean())), name


def test_same_seed_same_model():
    series = [synthetic(seed=3)]
    a = fit_models(series, CFG).students["student"]
    b = fit_models(series, CFG).students["student"]
    x = split_windows(series, CFG).cal_x[:50]
    np.testing.assert_array_equal(predict_student(a, x)[0], predict_student(b, x)[0])


def test_more_seeds_train_the_same_students_from_other_seeds():
    """The bench's seed noise: ``student@1`` is the student of seed + 1 on the same windows (for the
    undistilled one, the very network a run with that seed trains), not a copy of seed 0's."""
    series = [synthetic(seed=3)]
    result = fit_models(series, CFG, seeds=2)
    assert {"student@1", "student_no_kd@1"} <= set(result.students)
    x = split_windows(series, CFG).cal_x[:50]
    first, again = (predict_student(result.students[n], x)[0] for n in ("student", "student@1"))
    assert not np.allclose(first, again)
    alone = fit_models(series, replace(CFG, seed=CFG.seed + 1)).students["student_no_kd"]
    np.testing.assert_array_equal(predict_student(result.students["student_no_kd@1"], x)[0],
                                  predict_student(alone, x)[0])


def test_distillation_terms_switch_off():
    w = DistillWeights().without("point", "spectral")
    assert w.point == 0 and w.spectral == 0 and w.feature > 0 and w.active
    assert not DistillWeights().without("point", "feature", "multiscale", "spectral").active
    with pytest.raises(ValueError, match="unknown distillation term"):
        DistillWeights().without("vibes")


def test_time_warp_changes_the_period():
    v = synthetic(n=600, period=30).values
    stretched = time_warp(v, 1.5)
    assert len(stretched) == 900
    from gridshift.forecaster.baselines import estimate_period

    assert estimate_period(stretched, 120) == pytest.approx(45, abs=2)


def test_too_little_data_is_explained(tmp_path: Path):
    with pytest.raises(ValueError, match="too little data"):
        split_windows([synthetic(n=60)], CFG)
