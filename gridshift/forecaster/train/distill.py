"""Sequence-to-point distillation losses (normalised units).

The student's loss is the ground-truth loss plus, each switchable:

1. ``point``: its median at the horizons follows the teacher's prediction at those steps;
2. ``feature``: a projection of its hidden layer follows the teacher's temporally pooled
   representation (both layer-normalised);
3. ``multiscale`` and ``spectral``, in the spirit of TimeDistill (Ni et al., 2025): an
   auxiliary head on the student's hidden layer predicts the whole horizon trajectory, which
   must match the teacher's at several temporal scales (average pooling) and in its spectrum
   (softmax-normalised FFT amplitudes, compared with KL divergence), so the hidden layer
   carries the teacher's knowledge of phase shapes and periods.

The projection and auxiliary heads exist only during training; the exported student is the
plain MLP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

TERMS = ("point", "feature", "multiscale", "spectral")


@dataclass(frozen=True)
class DistillWeights:
    point: float = 0.5
    feature: float = 0.1
    multiscale: float = 0.5
    spectral: float = 0.1
    scales: tuple[int, ...] = (1, 2, 5, 10)
    temperature: float = 0.5

    def without(self, *terms: str) -> DistillWeights:
        values = asdict(self)
        for term in terms:
            if term not in TERMS:
                raise ValueError(f"unknown distillation term {term!r}")
            values[term] = 0.0
        return DistillWeights(**values)

    @property
    def active(self) -> bool:
        return any(getattr(self, t) > 0 for t in TERMS)

    def describe(self) -> dict[str, float]:
        return {t: getattr(self, t) for t in TERMS}


NO_DISTILLATION = DistillWeights().without(*TERMS)


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean absolute error with a per-window ``weight`` ``[N, 1]`` (normalised units to
    fractions of mean power: see ``nets.relative_weight``)."""
    return ((pred - target).abs() * weight).mean()


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, q: float, weight: torch.Tensor) -> torch.Tensor:
    diff = target - pred
    return (torch.maximum(q * diff, (q - 1) * diff) * weight).mean()


def ground_truth_loss(p50: torch.Tensor, upper: torch.Tensor, target: torch.Tensor, q: float,
                      weight: torch.Tensor) -> torch.Tensor:
    return weighted_l1(p50, target, weight) + pinball_loss(upper, target, q, weight)


def _pool(x: torch.Tensor, s: int) -> torch.Tensor:
    if s == 1:
        return x
    n, length = x.shape
    usable = length - length % s
    return x[:, :usable].reshape(n, usable // s, s).mean(dim=2)


def multiscale_loss(student_traj: torch.Tensor, teacher_traj: torch.Tensor, scales: tuple[int, ...],
                    weight: torch.Tensor) -> torch.Tensor:
    return sum(weighted_l1(_pool(student_traj, s), _pool(teacher_traj, s), weight) for s in scales) / len(scales)


def spectral_loss(student_traj: torch.Tensor, teacher_traj: torch.Tensor, temperature: float) -> torch.Tensor:
    amp_s = torch.fft.rfft(student_traj - student_traj.mean(dim=1, keepdim=True), dim=1).abs()[:, 1:]
    amp_t = torch.fft.rfft(teacher_traj - teacher_traj.mean(dim=1, keepdim=True), dim=1).abs()[:, 1:]
    log_p_s = F.log_softmax(amp_s / temperature, dim=1)
    p_t = F.softmax(amp_t / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean")


class DistillHeads(nn.Module):
    """Training-only heads on the student's hidden layer."""

    def __init__(self, hidden: int, teacher_channels: int, horizon: int):
        super().__init__()
        self.project = nn.Linear(hidden, teacher_channels)
        self.trajectory = nn.Linear(hidden, horizon)


def distillation_loss(
    w: DistillWeights,
    heads: DistillHeads,
    student_p50: torch.Tensor,
    student_hidden: torch.Tensor,
    teacher_traj: torch.Tensor,
    teacher_pooled: torch.Tensor,
    horizon_index: torch.Tensor,
    weight: torch.Tensor,
) -> torch.Tensor:
    loss = student_p50.new_zeros(())
    if w.point:
        loss = loss + w.point * weighted_l1(student_p50, teacher_traj.index_select(1, horizon_index), weight)
    if w.feature:
        proj = F.layer_norm(heads.project(student_hidden), (teacher_pooled.shape[1],))
        target = F.layer_norm(teacher_pooled, (teacher_pooled.shape[1],))
        loss = loss + w.feature * F.mse_loss(proj, target)
    if w.multiscale or w.spectral:
        traj = heads.trajectory(student_hidden)
        if w.multiscale:
            loss = loss + w.multiscale * multiscale_loss(traj, teacher_traj, w.scales, weight)
        if w.spectral:
            loss = loss + w.spectral * spectral_loss(traj, teacher_traj, w.temperature)
    return loss
