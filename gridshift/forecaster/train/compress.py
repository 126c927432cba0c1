"""Deployment options for the student: int8 dynamic quantisation of the ONNX file and
magnitude pruning of its weights. Each variant is exported as a network of its own in the model
directory, so ``gridshift forecast evaluate`` measures its accuracy cost beside the original."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from gridshift.forecaster.train.nets import ExportStudent


def magnitude_prune(export: ExportStudent, fraction: float) -> tuple[ExportStudent, float]:
    """A copy whose smallest ``fraction`` of Linear weights (by magnitude, over all layers) are
    zero. Returns the copy and the fraction actually zeroed."""
    if not 0 < fraction < 1:
        raise ValueError(f"prune fraction must be in (0, 1), got {fraction}")
    pruned = copy.deepcopy(export)
    weights = [m.weight for m in pruned.student.modules() if isinstance(m, nn.Linear)]
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    k = int(fraction * flat.numel())
    threshold = flat.kthvalue(max(k, 1)).values
    zeroed = 0
    with torch.no_grad():
        for w in weights:
            mask = w.abs() <= threshold
            w[mask] = 0.0
            zeroed += int(mask.sum())
    return pruned.eval(), zeroed / flat.numel()


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of the MatMul/Gemm weights (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return dst
