"""Train the teacher, distil the student, calibrate its upper bound and export a model directory.

Data split, per training series: the first ``1 - calib_fraction`` of each series trains the
networks; the rest is held out for early stopping and split-conformal calibration of the
upper bound. No window straddles the split (targets of a training window stay left of it).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from gridshift.forecaster.metrics import mae, make_windows
from gridshift.forecaster.runtime import FORMAT, META_FILE
from gridshift.forecaster.train.compress import magnitude_prune, quantize_int8
from gridshift.forecaster.train.distill import (
    NO_DISTILLATION,
    TERMS,
    DistillHeads,
    DistillWeights,
    distillation_loss,
    ground_truth_loss,
    weighted_l1,
)
from gridshift.forecaster.train.nets import (
    ExportStudent,
    ExportTeacher,
    InstanceNorm,
    Student,
    Teacher,
    export_onnx,
    parameter_count,
    relative_weight,
    window_mean,
)
from gridshift.progress import Progress
from gridshift.telemetry.series import Series


@dataclass(frozen=True)
class TrainConfig:
    step_s: float = 1.0
    window: int = 120
    horizons_s: tuple[float, ...] = (5.0, 10.0, 30.0)
    quantile: float = 0.9
    levels: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)
    calib_fraction: float = 0.25
    teacher_epochs: int = 60
    student_epochs: int = 300
    batch: int = 256
    teacher_lr: float = 2e-3
    student_lr: float = 3e-3
    weight_decay: float = 1e-4
    teacher_dim: int = 72
    teacher_layers: int = 3
    student_hidden: int = 32
    patience: int = 12
    warp_factors: tuple[float, ...] = (0.6, 0.8, 1.25, 1.6)
    seed: int = 0
    device: str = "cpu"
    distill: DistillWeights = field(default_factory=DistillWeights)

    @property
    def horizon_steps(self) -> list[int]:
        return [round(h / self.step_s) for h in self.horizons_s]

    @property
    def trajectory(self) -> int:
        return max(self.horizon_steps)


@dataclass
class Split:
    fit_x: np.ndarray
    fit_y: np.ndarray  # [N, trajectory] future values, steps 1..H
    cal_x: np.ndarray
    cal_y: np.ndarray


def time_warp(values: np.ndarray, factor: float) -> np.ndarray:
    """``values`` played ``factor`` times slower (``factor`` > 1 stretches phases)."""
    n = len(values)
    length = max(int(n * factor), 2)
    return np.interp(np.linspace(0, n - 1, length), np.arange(n), values)


def split_windows(series: list[Series], cfg: TrainConfig, extra_fit: list[Series] | None = None) -> Split:
    """Training and calibration windows; ``extra_fit`` series (e.g. single GPUs) train only."""
    steps = list(range(1, cfg.trajectory + 1))
    fx, fy, cx, cy = [], [], [], []
    tagged = [(s, True) for s in series] + [(s, False) for s in extra_fit or []]
    for s, calibrates in tagged:
        cut = round(len(s.values) * (1 - cfg.calib_fraction))
        x, y, origins = make_windows(s.values, cfg.window, steps)
        fit = origins + cfg.trajectory < cut
        fx.append(x[fit]), fy.append(y[fit])
        if not calibrates:
            continue
        cx.append(x[origins >= cut]), cy.append(y[origins >= cut])
        # Time-warped copies of the training part: other checkpoint intervals, same physics.
        for factor in cfg.warp_factors:
            wx, wy, _ = make_windows(time_warp(s.values[:cut], factor), cfg.window, steps)
            fx.append(wx), fy.append(wy)

    def cat(parts: list[np.ndarray], width: int) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, width))

    split = Split(cat(fx, cfg.window), cat(fy, cfg.trajectory), cat(cx, cfg.window), cat(cy, cfg.trajectory))
    if len(split.fit_x) < 10 or len(split.cal_x) < 10:
        raise ValueError(
            f"too little data: {len(split.fit_x)} training and {len(split.cal_x)} calibration windows of "
            f"{cfg.window} steps (+{cfg.trajectory} ahead); give longer or more series"
        )
    return split


def _seed(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Normalised:
    """Windows and targets in normalised units, with each window's loss weight (``relative_weight``)."""

    x: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor


def _tensors(split: Split, dev: torch.device) -> tuple[Normalised, Normalised]:
    """The training and the calibration windows, normalised, on ``dev``."""
    norm = InstanceNorm()
    out = []
    for x, y in ((split.fit_x, split.fit_y), (split.cal_x, split.cal_y)):
        window = torch.tensor(x, dtype=torch.float32)
        xn, level, scale = norm(window)
        yn = (torch.tensor(y, dtype=torch.float32) - level) / scale
        out.append(Normalised(xn.to(dev), yn.to(dev), relative_weight(window, scale).to(dev)))
    return out[0], out[1]


def _batches(n: int, batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch] for i in range(0, n, batch)]


def _optimise(model: torch.nn.Module, params: list[torch.nn.Parameter],
              batch_loss: Callable[[torch.Tensor], torch.Tensor], val_loss: Callable[[], torch.Tensor],
              n: int, epochs: int, lr: float, patience: int, seed: int,
              cfg: TrainConfig, label: str, progress: Progress | None) -> torch.nn.Module:
    """AdamW with a cosine schedule over shuffled batches of ``n`` windows; stops after
    ``patience`` epochs without a better validation loss and returns ``model`` at its best."""
    dev = torch.device(cfg.device)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, stale = math.inf, None, 0
    for epoch in range(epochs):
        model.train()
        for idx in _batches(n, cfg.batch, gen):
            loss = batch_loss(idx.to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            val = float(val_loss())
        if val < best - 1e-5:
            best, best_state, stale = val, {k: v.detach().clone() for k, v in model.state_dict().items()}, 0
        else:
            stale += 1
        if progress:
            progress(label, epoch + 1, epochs, f"val L1 {val:.4f}")
        if stale >= patience:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    return model.eval().cpu()


def train_teacher(split: Split, cfg: TrainConfig, progress: Progress | None = None) -> Teacher:
    _seed(cfg.seed)
    dev = torch.device(cfg.device)
    fit, cal = _tensors(split, dev)
    model = Teacher(cfg.window, cfg.trajectory, cfg.teacher_dim, cfg.teacher_layers).to(dev)
    return _optimise(
        model, list(model.parameters()),
        batch_loss=lambda idx: weighted_l1(model(fit.x[idx])[0], fit.y[idx], fit.weight[idx]),
        val_loss=lambda: weighted_l1(model(cal.x)[0], cal.y, cal.weight),
        n=len(fit.x), epochs=cfg.teacher_epochs, lr=cfg.teacher_lr, patience=cfg.patience, seed=cfg.seed,
        cfg=cfg, label="teacher", progress=progress,
    )


def train_student(split: Split, cfg: TrainConfig, teacher: Teacher | None, weights: DistillWeights,
                  progress: Progress | None = None, label: str = "student") -> Student:
    _seed(cfg.seed + 1)
    dev = torch.device(cfg.device)
    hidx = torch.tensor([h - 1 for h in cfg.horizon_steps], dtype=torch.long, device=dev)
    fit, cal = _tensors(split, dev)
    use_teacher = weights.active and teacher is not None
    if use_teacher:
        assert teacher is not None
        teacher = teacher.to(dev).eval()
        with torch.no_grad():
            t_traj, t_pooled = teacher(fit.x)
    student = Student(cfg.window, len(cfg.horizon_steps), cfg.student_hidden).to(dev)
    heads = DistillHeads(cfg.student_hidden, cfg.teacher_dim, cfg.trajectory).to(dev)
    params = list(student.parameters()) + (list(heads.parameters()) if use_teacher else [])

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        p50, upper, hidden = student(fit.x[idx])
        w = fit.weight[idx]
        loss = ground_truth_loss(p50, upper, fit.y[idx].index_select(1, hidx), cfg.quantile, w)
        if use_teacher:
            loss = loss + distillation_loss(weights, heads, p50, hidden, t_traj[idx], t_pooled[idx], hidx, w)
        return loss

    return _optimise(
        student, params, batch_loss,
        val_loss=lambda: weighted_l1(student(cal.x)[0], cal.y.index_select(1, hidx), cal.weight),
        n=len(fit.x), epochs=cfg.student_epochs, lr=cfg.student_lr, patience=cfg.patience * 3, seed=cfg.seed + 1,
        cfg=cfg, label=label, progress=progress,
    )


def conformal_offsets(student: Student, split: Split, cfg: TrainConfig) -> torch.Tensor:
    """Split-conformal offsets ``[Q, K]`` that lift the upper head to each coverage level on the
    calibration windows, in fractions of each window's mean power (``ExportStudent`` applies them)."""
    norm = InstanceNorm()
    hs = [h - 1 for h in cfg.horizon_steps]
    with torch.no_grad():
        window = torch.tensor(split.cal_x, dtype=torch.float32)
        xn, level, scale = norm(window)
        _, upper, _ = student(xn)
        y = torch.tensor(split.cal_y[:, hs], dtype=torch.float32)
        scores = ((y - (level + upper * scale)) / window_mean(window)).numpy()
    n = len(scores)
    rows = []
    for q in cfg.levels:
        rank = min(math.ceil((n + 1) * q) / n, 1.0)
        rows.append(np.quantile(scores, rank, axis=0, method="higher"))
    return torch.tensor(np.stack(rows), dtype=torch.float32)


def predict_student(export: ExportStudent, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        p50, upper = export(torch.tensor(x, dtype=torch.float32))
    return p50.numpy(), upper.numpy()


def predict_teacher(export: ExportTeacher, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return export(torch.tensor(x, dtype=torch.float32)).numpy()


@dataclass
class TrainResult:
    cfg: TrainConfig
    teacher: ExportTeacher | None  # None: trained without a teacher (fit_models(teacher=False))
    students: dict[str, ExportStudent]  # "student", "student_no_kd", ablations, "NAME@SEED"
    parameters: dict[str, int]
    validation: dict[str, dict[str, float]]  # name -> {"h5": mae W, ...} on calibration windows
    seconds: dict[str, float]


def fit_models(series: list[Series], cfg: TrainConfig, extra_fit: list[Series] | None = None,
               ablations: bool = False, progress: Progress | None = None, seeds: int = 1,
               teacher: bool = True) -> TrainResult:
    """Train teacher, distilled student and non-distilled student (and, with ``ablations``, a
    student without each distillation term) on ``series``. With ``seeds`` > 1, the distilled and
    the non-distilled student are also trained from ``seeds - 1`` more seeds (``student@S``,
    ``student_no_kd@S``: same teacher, same windows), to tell their difference from seed noise.
    ``teacher=False`` trains only the student, without distillation (about a sixth of the time on
    a CPU: what the cross-validated control bench trains per fold)."""
    if not teacher:
        return _fit_student_alone(series, cfg, extra_fit, progress)
    split = split_windows(series, cfg, extra_fit)
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    network = train_teacher(split, cfg, progress)
    seconds["teacher"] = time.monotonic() - t0
    variants: dict[str, tuple[DistillWeights, TrainConfig]] = {
        "student": (cfg.distill, cfg), "student_no_kd": (NO_DISTILLATION, cfg)}
    if ablations:
        for term in TERMS:
            variants[f"student_no_{term}"] = (cfg.distill.without(term), cfg)
    for seed in range(1, seeds):
        again = replace(cfg, seed=cfg.seed + seed)
        variants[f"student@{seed}"] = (cfg.distill, again)
        variants[f"student_no_kd@{seed}"] = (NO_DISTILLATION, again)
    norm = InstanceNorm()
    students: dict[str, ExportStudent] = {}
    for name, (weights, run_cfg) in variants.items():
        t0 = time.monotonic()
        student = train_student(split, run_cfg, network, weights, progress, label=name)
        students[name] = ExportStudent(student, norm, conformal_offsets(student, split, run_cfg)).eval()
        seconds[name] = time.monotonic() - t0
    teacher_export = ExportTeacher(network, norm, cfg.horizon_steps).eval()
    validation = _validation(split, cfg, students, teacher_export)
    parameters = {"teacher": parameter_count(network), "student": parameter_count(students["student"].student)}
    return TrainResult(cfg, teacher_export, students, parameters, validation, seconds)


def _fit_student_alone(series: list[Series], cfg: TrainConfig, extra_fit: list[Series] | None,
                       progress: Progress | None) -> TrainResult:
    split = split_windows(series, cfg, extra_fit)
    t0 = time.monotonic()
    student = train_student(split, cfg, None, NO_DISTILLATION, progress, label="student")
    students = {"student": ExportStudent(student, InstanceNorm(), conformal_offsets(student, split, cfg)).eval()}
    return TrainResult(cfg, None, students, {"teacher": 0, "student": parameter_count(student)},
                       _validation(split, cfg, students), {"student": time.monotonic() - t0})


def _validation(split: Split, cfg: TrainConfig, students: dict[str, ExportStudent],
                teacher: ExportTeacher | None = None) -> dict[str, dict[str, float]]:
    """MAE per horizon of each network on the calibration windows (the teacher first, if any)."""
    truth = split.cal_y[:, [h - 1 for h in cfg.horizon_steps]]
    out = {} if teacher is None else {"teacher": _per_horizon(truth, predict_teacher(teacher, split.cal_x), cfg)}
    for name, exp in students.items():
        out[name] = _per_horizon(truth, predict_student(exp, split.cal_x)[0], cfg)
    return out


def _per_horizon(truth: np.ndarray, pred: np.ndarray, cfg: TrainConfig) -> dict[str, float]:
    return {f"{h:g}": mae(truth[:, k], pred[:, k]) for k, h in enumerate(cfg.horizons_s)}


def fingerprint(paths: list[Path]) -> list[dict[str, str | int]]:
    out = []
    for p in paths:
        data = Path(p).read_bytes()
        out.append({"name": Path(p).name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    return out


def write_model_dir(result: TrainResult, out: Path, data: list[Path], include_teacher: bool = True,
                    networks: tuple[str, ...] = ("student", "student_no_kd"), prune: float = 0.0,
                    quantize: bool = False) -> Path:
    """Export the networks to ONNX and write ``model.json``. ``prune`` adds ``student_pruned``
    (that fraction of weights zeroed by magnitude); ``quantize`` adds ``student_int8``."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = result.cfg
    exports = {name: result.students[name] for name in networks}
    notes: dict[str, dict] = {}
    if prune:
        exports["student_pruned"], zeroed = magnitude_prune(result.students["student"], prune)
        notes["student_pruned"] = {"zeroed_fraction": round(zeroed, 4)}
    files: dict[str, dict] = {}
    for name, export in exports.items():
        path = out / f"{name}.onnx"
        export_onnx(export, cfg.window, str(path), ["p50", "upper"])
        files[name] = {"path": path.name, "parameters": parameter_count(export.student), **notes.get(name, {})}
    if quantize:
        path = quantize_int8(out / "student.onnx", out / "student_int8.onnx")
        files["student_int8"] = {"path": path.name, "parameters": files["student"]["parameters"], "weights": "int8"}
    if include_teacher and result.teacher is not None:
        path = out / "teacher.onnx"
        export_onnx(result.teacher, cfg.window, str(path), ["p50"])
        files["teacher"] = {"path": path.name, "parameters": result.parameters["teacher"]}
    for entry in files.values():
        entry["sha256"] = hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest()
    prints = fingerprint(data)
    doc = {
        "format": FORMAT,
        "step_s": cfg.step_s,
        "window": cfg.window,
        "horizons_s": list(cfg.horizons_s),
        "quantiles": list(cfg.levels),
        "normalisation": {"kind": "instance", "level": "mean of last 3 samples",
                          "scale": "sqrt(var + (0.02*level)^2 + 1)", "inside_graph": True},
        "upper_bound": {"kind": "split conformal over the upper head",
                        "margin_unit": "fraction of the window's mean power", "inside_graph": True},
        "files": files,
        "training": {
            "data": prints,
            "fingerprint": hashlib.sha256("".join(str(p["sha256"]) for p in prints).encode()).hexdigest(),
            "seed": cfg.seed,
            "config": {k: v for k, v in asdict(replace(cfg, device="any")).items() if k != "distill"},
            "distillation": cfg.distill.describe() if result.teacher is not None else "none (no teacher trained)",
            "teacher_parameters": result.parameters["teacher"],
            "student_parameters": result.parameters["student"],
            "torch": torch.__version__,
        },
        "metrics": {"calibration_mae_w": result.validation},
    }
    (out / META_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return out
