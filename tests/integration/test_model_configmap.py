"""A policy can name its own forecaster: a model directory shipped in a ConfigMap."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.forecaster.runtime import Forecaster, Persistence, default_model_dir
from gridshift.operator.models import ModelCache
from tests.conftest import Kube

pytestmark = pytest.mark.cluster


def _spec(namespace: str, name: str) -> PowerPolicySpec:
    return PowerPolicySpec.model_validate({"budget": {"capWatts": 1000},
                                           "forecast": {"modelConfigMap": {"namespace": namespace, "name": name}}})


def test_model_from_a_configmap_is_loaded_and_a_broken_one_falls_back(kube: Kube, namespace: str) -> None:
    src = default_model_dir()
    kube.core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "student"},
        "data": {"model.json": (src / "model.json").read_text()},
        "binaryData": {"student.onnx": base64.b64encode((src / "student.onnx").read_bytes()).decode()},
    })
    cache = ModelCache(kube.api)
    model, problem = cache.get(_spec(namespace, "student"))
    assert problem is None and isinstance(model, Forecaster)
    window = np.full(model.meta.window, 3000.0, np.float32)
    assert np.allclose(model.predict(window).p50, Forecaster.load("default").predict(window).p50)

    truncated = (src / "student.onnx").read_bytes()[:500]
    kube.core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "broken"},
        "data": {"model.json": (src / "model.json").read_text()},
        "binaryData": {"student.onnx": base64.b64encode(truncated).decode()},
    })
    model, problem = cache.get(_spec(namespace, "broken"))
    assert isinstance(model, Persistence) and problem is not None and f"{namespace}/broken" in problem

    model, problem = cache.get(_spec(namespace, "absent"))
    assert isinstance(model, Persistence) and problem is not None and "Not Found" in problem
