"""The forecaster each policy runs: the bundled model, or one shipped in a ConfigMap."""

from __future__ import annotations

import base64
import hashlib
import tempfile
from pathlib import Path

from kubernetes import client

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.forecaster.runtime import Forecaster, ModelError, Persistence, load_or_persistence


class ModelCache:
    """The bundled student, or a model directory shipped in a ConfigMap (``binaryData`` for the ONNX
    files, ``data`` or ``binaryData`` for model.json), loaded once per ConfigMap version."""

    def __init__(self, api: client.ApiClient):
        self.core = client.CoreV1Api(api)
        self.loaded: dict[str, tuple[Forecaster | Persistence, str | None]] = {}
        self.dir = Path(tempfile.mkdtemp(prefix="gridshift-models-"))

    def get(self, spec: PowerPolicySpec) -> tuple[Forecaster | Persistence, str | None]:
        ref = spec.forecast.model_config_map
        if ref is None:
            if "default" not in self.loaded:
                self.loaded["default"] = load_or_persistence("default")
            return self.loaded["default"]
        try:
            cm = self.core.read_namespaced_config_map(ref.name, ref.namespace)
        except client.ApiException as exc:
            return Persistence(), f"ConfigMap {ref.namespace}/{ref.name}: {exc.reason}"
        key = f"{ref.namespace}/{ref.name}@{cm.metadata.resource_version}"
        if key not in self.loaded:
            target = self.dir / hashlib.sha256(key.encode()).hexdigest()[:16]
            target.mkdir(parents=True, exist_ok=True)
            for name, text in (cm.data or {}).items():
                (target / name).write_text(text)
            for name, b64 in (cm.binary_data or {}).items():
                (target / name).write_bytes(base64.b64decode(b64))
            try:
                self.loaded[key] = (Forecaster.load(target), None)
            except ModelError as exc:
                self.loaded[key] = (Persistence(), f"model in ConfigMap {ref.namespace}/{ref.name}: {exc}")
        return self.loaded[key]
