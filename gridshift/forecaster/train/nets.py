"""The teacher and the student networks, and the wrappers that export them to ONNX.

Both take raw watts. :class:`InstanceNorm` (reversible instance normalisation, RevIN-style)
turns a window into scale-free changes from its current level, and the outputs are mapped back
with the same level and scale, so every network learns the *change* from now (residual
learning) and works at any site's power scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm(nn.Module):
    """``(window - level) / scale`` with level = mean of the last 3 samples and
    scale = sqrt(std² + (floor_fraction·level)² + 1 W²), so flat windows do not blow up.

    Losses are not taken in these units: an error of one unit is a few watts in a flat window and
    kilowatts in a swinging one. :func:`relative_weight` turns a normalised error back into a
    fraction of the window's mean power, which is what the training losses and the conformal
    offsets use, so the networks minimise error in watts (the deployed metric) and the upper
    bound's margin does not balloon with the window's spread after a load step."""

    def __init__(self, floor_fraction: float = 0.02):
        super().__init__()
        self.floor_fraction = floor_fraction

    def forward(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        level = window[:, -3:].mean(dim=1, keepdim=True)
        var = window.var(dim=1, keepdim=True, unbiased=False)
        scale = torch.sqrt(var + (self.floor_fraction * level) ** 2 + 1.0)
        return (window - level) / scale, level, scale


def window_mean(window: torch.Tensor) -> torch.Tensor:
    """``[N, 1]`` mean power of each window (at least 1 W): the unit of losses and margins."""
    return window.mean(dim=1, keepdim=True).clamp(min=1.0)


def relative_weight(window: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``[N, 1]`` factor that turns a normalised error into a fraction of the window's mean power."""
    return scale / window_mean(window)


class _EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer with explicit attention (plain ops, exports cleanly)."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.drop(self.proj((att @ v).transpose(1, 2).reshape(n, t, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class Teacher(nn.Module):
    """PatchTST-style encoder: the normalised window is cut into patches of ``patch`` steps,
    each embedded as a token with a learned position; pre-norm transformer layers (residual)
    mix them, and a linear head maps all tokens to the whole trajectory of the next
    ``horizon`` steps. The mean token is the representation the student aligns with."""

    def __init__(self, window: int, horizon: int, dim: int = 72, layers: int = 3, heads: int = 4,
                 patch: int = 10, dropout: float = 0.1):
        super().__init__()
        if window % patch:
            raise ValueError(f"window ({window}) must be a multiple of patch ({patch})")
        self.window, self.horizon, self.patch, self.channels = window, horizon, patch, dim
        tokens = window // patch
        self.embed = nn.Linear(patch, dim)
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))
        self.layers = nn.ModuleList(_EncoderLayer(dim, heads, 2 * dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(tokens * dim, horizon)

    def forward(self, x_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (trajectory ``[N, horizon]`` normalised, pooled representation ``[N, dim]``)."""
        n = x_norm.shape[0]
        h = self.embed(x_norm.reshape(n, self.window // self.patch, self.patch)) + self.position
        for layer in self.layers:
            h = layer(h)
        h = self.norm(h)
        return self.head(h.reshape(n, -1)), h.mean(dim=1)


class Student(nn.Module):
    """Point-wise MLP over multi-scale features of the window: the last ``fine`` samples, the
    whole window averaged in blocks of ``coarse`` samples, and its min and max. Outputs the
    median change and an upper-quantile change at each horizon (normalised units)."""

    def __init__(self, window: int, horizons: int, hidden: int = 40, fine: int = 30, coarse: int = 10):
        super().__init__()
        if window % coarse:
            raise ValueError(f"window ({window}) must be a multiple of coarse ({coarse})")
        self.window, self.fine, self.coarse, self.k = window, min(fine, window), coarse, horizons
        features = self.fine + window // coarse + 2
        self.l1 = nn.Linear(features, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 2 * horizons)

    def features(self, x_norm: torch.Tensor) -> torch.Tensor:
        n = x_norm.shape[0]
        coarse = x_norm.reshape(n, self.window // self.coarse, self.coarse).mean(dim=2)
        stats = torch.stack([x_norm.amin(dim=1), x_norm.amax(dim=1)], dim=1)
        return torch.cat([x_norm[:, -self.fine:], coarse, stats], dim=1)

    def forward(self, x_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (p50 ``[N, K]``, upper ``[N, K]`` >= p50, hidden ``[N, hidden]``)."""
        h = F.gelu(self.l1(self.features(x_norm)))
        h = F.gelu(self.l2(h))
        out = self.out(h)
        p50 = out[:, : self.k]
        upper = p50 + F.softplus(out[:, self.k:])
        return p50, upper, h


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class ExportStudent(nn.Module):
    """window (watts) -> p50 ``[N, K]`` and calibrated upper ``[N, Q, K]`` (watts): the upper head
    plus a conformal margin in fractions of the window's mean power."""

    def __init__(self, student: Student, norm: InstanceNorm, offsets: torch.Tensor):
        super().__init__()
        self.student, self.norm = student, norm
        self.register_buffer("offsets", offsets.float())  # [Q, K] conformal offsets, fractions of mean power

    def forward(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, level, scale = self.norm(window)
        p50_n, upper_n, _ = self.student(x)
        p50 = level + p50_n * scale
        head = level + upper_n * scale
        upper = head[:, None, :] + self.offsets[None, :, :] * window_mean(window)[:, :, None]
        return p50, torch.maximum(upper, p50[:, None, :])


class ExportTeacher(nn.Module):
    """window (watts) -> p50 ``[N, K]`` at the given horizon steps (watts)."""

    def __init__(self, teacher: Teacher, norm: InstanceNorm, horizon_steps: list[int]):
        super().__init__()
        self.teacher, self.norm = teacher, norm
        self.register_buffer("index", torch.tensor([h - 1 for h in horizon_steps], dtype=torch.long))

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x, level, scale = self.norm(window)
        traj, _ = self.teacher(x)
        return level + traj.index_select(1, self.index) * scale


def export_onnx(module: nn.Module, window: int, path: str, outputs: list[str]) -> None:
    module.eval()
    example = torch.zeros(2, window) + 1000.0
    torch.onnx.export(
        module, (example,), path, input_names=["window"], output_names=outputs,
        dynamic_axes={"window": {0: "n"}, **{o: {0: "n"} for o in outputs}},
        opset_version=17, dynamo=False,
    )
