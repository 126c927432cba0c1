"""Run a trained forecaster with onnxruntime; numpy and onnxruntime only, never torch.

A model directory holds ``model.json`` (the metadata below) and one ONNX file per network.
Every network takes ``window``: float32 ``[N, window]`` raw watts, oldest first, evenly spaced
at ``step_s``, and returns ``p50``: ``[N, K]`` watts at ``horizons_s``; the student also
returns ``upper``: ``[N, Q, K]``, the conformally calibrated upper bound at each of
``quantiles``. Normalisation lives inside the graphs, so callers pass watts and get watts.

Failures to load raise :class:`ModelError` with the reason (missing file, truncated or
foreign ONNX, shapes that disagree with the metadata, checksum mismatch);
:func:`load_or_persistence` turns that into a persistence fallback plus the reason, which is
what the operator uses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "gridshift-forecaster/v1"
META_FILE = "model.json"


class ModelError(RuntimeError):
    """A model directory cannot be used."""


@dataclass(frozen=True)
class Forecast:
    """Forecasts for a batch of windows: ``p50[n, k]`` and ``upper[n, q, k]`` in watts."""

    horizons_s: tuple[float, ...]
    quantiles: tuple[float, ...]
    p50: np.ndarray
    upper: np.ndarray | None

    def upper_at(self, confidence: float) -> np.ndarray:
        """Upper bound ``[n, k]`` at the smallest calibrated level >= ``confidence`` (the highest
        level when ``confidence`` exceeds them all; ``quantiles`` says which exist). At 0.5 and
        below it is the median, ``p50``."""
        if self.upper is None:
            raise ValueError("this model has no upper bound")
        if confidence <= 0.5 + 1e-9:
            return self.p50
        for i, q in enumerate(self.quantiles):
            if q >= confidence - 1e-9:
                return self.upper[:, i, :]
        return self.upper[:, -1, :]


@dataclass(frozen=True)
class ModelMeta:
    step_s: float
    window: int
    horizons_s: tuple[float, ...]
    quantiles: tuple[float, ...]
    files: dict[str, dict[str, Any]]
    raw: dict[str, Any]

    @property
    def horizon_steps(self) -> tuple[int, ...]:
        return tuple(round(h / self.step_s) for h in self.horizons_s)

    @classmethod
    def parse(cls, doc: dict[str, Any], where: str) -> ModelMeta:
        if doc.get("format") != FORMAT:
            raise ModelError(f"{where}: format is {doc.get('format')!r}, expected {FORMAT!r}")
        try:
            meta = cls(
                step_s=float(doc["step_s"]),
                window=int(doc["window"]),
                horizons_s=tuple(float(h) for h in doc["horizons_s"]),
                quantiles=tuple(float(q) for q in doc.get("quantiles", [])),
                files=dict(doc["files"]),
                raw=doc,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: malformed metadata ({exc!r})") from None
        if meta.step_s <= 0 or meta.window < 2 or not meta.horizons_s:
            raise ModelError(f"{where}: step_s, window and horizons_s must be positive")
        if "student" not in meta.files:
            raise ModelError(f"{where}: files lists no 'student' network")
        return meta


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class OnnxNetwork:
    """One ONNX network of a model directory, checked against the metadata."""

    def __init__(self, path: Path, meta: ModelMeta, expected_sha256: str | None, threads: int = 1):
        import onnxruntime as ort

        if not path.is_file():
            raise ModelError(f"{path}: file missing")
        self.sha256 = _sha256(path)  # what state learned from this network's forecasts is keyed on
        if expected_sha256 and self.sha256 != expected_sha256:
            raise ModelError(f"{path}: checksum differs from {META_FILE} (file replaced or truncated)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several private exception types
            raise ModelError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        inputs = self.session.get_inputs()
        outputs = {o.name: o for o in self.session.get_outputs()}
        if len(inputs) != 1 or inputs[0].name != "window":
            raise ModelError(f"{path}: expected one input named 'window', found {[i.name for i in inputs]}")
        width = inputs[0].shape[-1]
        if isinstance(width, int) and width != meta.window:
            raise ModelError(f"{path}: input takes windows of {width} samples but {META_FILE} says {meta.window}")
        if "p50" not in outputs:
            raise ModelError(f"{path}: no 'p50' output (has {sorted(outputs)})")
        k = outputs["p50"].shape[-1]
        if isinstance(k, int) and k != len(meta.horizons_s):
            raise ModelError(f"{path}: p50 has {k} horizons but {META_FILE} lists {len(meta.horizons_s)}")
        self.has_upper = "upper" in outputs
        self.output_names = ["p50", "upper"] if self.has_upper else ["p50"]
        self.path = path

    def run(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.session.run(self.output_names, {"window": windows})
        return out[0], (out[1] if self.has_upper else None)


class Forecaster:
    """The networks of one model directory; ``predict`` uses the student."""

    def __init__(self, directory: Path, threads: int = 1):
        self.directory = directory
        meta_path = directory / META_FILE
        if not directory.is_dir():
            raise ModelError(f"{directory}: model directory not found")
        if not meta_path.is_file():
            raise ModelError(f"{meta_path}: metadata file missing")
        try:
            doc = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"{meta_path}: not valid JSON ({exc})") from None
        self.meta = ModelMeta.parse(doc, str(meta_path))
        self._threads = threads
        self._networks: dict[str, OnnxNetwork] = {}
        self.student = self.network("student")

    @classmethod
    def load(cls, model: str | Path = "default", threads: int = 1) -> Forecaster:
        """Load ``model``: a directory, or ``"default"`` for the model bundled with gridshift."""
        return cls(default_model_dir() if str(model) == "default" else Path(model), threads=threads)

    def available(self) -> list[str]:
        return sorted(self.meta.files)

    def network(self, name: str) -> OnnxNetwork:
        if name not in self._networks:
            entry = self.meta.files.get(name)
            if entry is None:
                raise ModelError(f"{self.directory}: no network {name!r} (has {self.available()})")
            self._networks[name] = OnnxNetwork(self.directory / entry["path"], self.meta, entry.get("sha256"),
                                               self._threads)
        return self._networks[name]

    def check_windows(self, windows: np.ndarray) -> np.ndarray:
        arr = np.asarray(windows, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.meta.window:
            raise ValueError(f"windows must have {self.meta.window} samples each, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("windows contain NaN or infinite values; resample and mark gaps first")
        return np.ascontiguousarray(arr)

    def predict(self, windows: np.ndarray, network: str = "student") -> Forecast:
        """Forecast one window ``[window]`` or a batch ``[N, window]`` of raw watts."""
        arr = self.check_windows(windows)
        p50, upper = self.network(network).run(arr)
        return Forecast(self.meta.horizons_s, self.meta.quantiles, p50, upper)


class Persistence:
    """The fallback: tomorrow looks like now. Same ``predict`` contract, no upper bound."""

    def __init__(self, window: int = 120, horizons_s: tuple[float, ...] = (5.0, 10.0, 30.0), step_s: float = 1.0):
        self.window = window
        self.horizons_s = horizons_s
        self.step_s = step_s

    def predict(self, windows: np.ndarray) -> Forecast:
        arr = np.atleast_2d(np.asarray(windows, dtype=np.float32))
        last = arr[:, -1:]
        return Forecast(self.horizons_s, (), np.repeat(last, len(self.horizons_s), axis=1), None)


def training_overlap(meta: ModelMeta, paths: list[str] | list[Path]) -> list[str]:
    """The files among ``paths`` that the model was trained on (``model.json`` lists its training
    files with their SHA-256): scores on them are in-sample, not evidence of how it forecasts a run
    it never saw. Matched by content, so a renamed copy is caught too."""
    trained = {str(d.get("sha256")) for d in meta.raw.get("training", {}).get("data", []) if isinstance(d, dict)}
    if not trained:
        return []
    return [str(p) for p in paths if Path(p).is_file() and _sha256(Path(p)) in trained]


def default_model_dir() -> Path:
    return Path(str(resources.files("gridshift.forecaster") / "default_model"))


def load_or_persistence(model: str | Path = "default") -> tuple[Forecaster | Persistence, str | None]:
    """The model, or persistence and the reason the model could not be used."""
    try:
        return Forecaster.load(model), None
    except ModelError as exc:
        return Persistence(), str(exc)
