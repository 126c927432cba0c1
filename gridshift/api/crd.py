"""Render CustomResourceDefinitions from the pydantic API types.

Pydantic writes JSON Schema (2020-12); the API server wants a *structural* OpenAPI v3 schema.
The conversion inlines ``$ref``, turns ``Optional[X]`` into an optional ``X``, rewrites numeric
``exclusiveMinimum``/``exclusiveMaximum`` into OpenAPI 3.0's boolean form, drops
``additionalProperties: false`` (the API server prunes unknown fields instead) and gives every
defaulted sub-object ``default: {}`` so that nested defaults apply to a sparse policy.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from gridshift.api import energystorage as es
from gridshift.api import powerpolicy as pp

_DROP = {"title"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            target = _inline(copy.deepcopy(defs[name]), defs)
            siblings = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings}
        if "allOf" in node and len(node["allOf"]) == 1:
            inner = _inline(node["allOf"][0], defs)
            rest = {k: _inline(v, defs) for k, v in node.items() if k != "allOf"}
            return {**inner, **rest}
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _fractional_bounds(node: dict[str, Any]) -> None:
    """A CEL rule beside each fractional ``minimum``/``maximum`` of a number: the API server's OpenAPI
    check compares an integer value with the bound truncated to an integer (0 passed ``minimum:
    0.5``; seen by bench/schema_fuzz.py), while CEL compares numbers as numbers."""
    if node.get("type") != "number":
        return
    rules = []
    for bound, op, word in (("minimum", ">", "at least"), ("maximum", "<", "at most")):
        value = node.get(bound)
        if isinstance(value, float) and not value.is_integer():
            exclusive = node.get(f"exclusive{bound[0].upper()}{bound[1:]}") is True
            if exclusive:
                word = "more than" if op == ">" else "less than"
            rule = f"self {op}{'' if exclusive else '='} {value!r}"
            rules.append({"rule": rule, "message": f"must be {word} {value:g}"})
    if rules:
        node["x-kubernetes-validations"] = [*node.get("x-kubernetes-validations", []), *rules]


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one (inlined) JSON Schema node, recursively, into structural OpenAPI v3."""
    node = dict(node)
    nullable = False
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        nullable = len(options) == 1
        if len(options) != 1:
            raise ValueError(f"cannot express union {options} in a structural schema")
        node = {**options[0], **node}
    for key in _DROP:
        node.pop(key, None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("default", 0) is None:
        node.pop("default")
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node.get(bound), bool):
            node[flag] = node.pop(bound)
            node[bound] = True
    _fractional_bounds(node)
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural(node["additionalProperties"])
    if "items" in node:
        node["items"] = _structural(node["items"])
    if "properties" in node:
        node["type"] = "object"
        required = set(node.get("required", []))
        props = {}
        for name, sub in node["properties"].items():
            was_nullable = "anyOf" in sub
            sub = _structural(sub)
            if (
                sub.get("type") == "object"
                and "properties" in sub
                and name not in required
                and "default" not in sub
                and not was_nullable
                and not sub.get("required")
            ):
                sub["default"] = {}
            props[name] = sub
        node["properties"] = props
    node["_nullable"] = nullable
    return node


def _strip_markers(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_markers(v) for k, v in node.items() if k != "_nullable"}
    if isinstance(node, list):
        return [_strip_markers(v) for v in node]
    return node


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Structural OpenAPI v3 schema of ``model`` (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    inlined = _inline(raw, raw.get("$defs", {}))
    schema: dict[str, Any] = _strip_markers(_structural(inlined))
    return schema


def _crd(*, plural: str, kind: str, short_name: str, columns: list[dict[str, Any]], root: type[BaseModel],
         spec: type[BaseModel], status: type[BaseModel]) -> dict[str, Any]:
    """A cluster-scoped gridshift.io CRD with a status subresource, its schema from the models."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{pp.API_GROUP}",
            "labels": {"app.kubernetes.io/name": "gridshift", "app.kubernetes.io/part-of": "gridshift"},
        },
        "spec": {
            "group": pp.API_GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": ["gridshift"],
            },
            "versions": [
                {
                    "name": pp.API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        *columns, {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (root.__doc__ or "").strip(),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(spec),
                                "status": openapi_schema(status),
                            },
                        }
                    },
                }
            ],
        },
    }


def powerpolicy_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of ``powerpolicies.gridshift.io``."""
    return _crd(plural=pp.PLURAL, kind=pp.KIND, short_name="pp", root=pp.PowerPolicy, spec=pp.PowerPolicySpec,
                status=pp.PowerPolicyStatus, columns=[
                    {"name": "Budget", "type": "number", "jsonPath": ".spec.budget.capWatts",
                     "description": "Power cap in watts"},
                    {"name": "Observed", "type": "integer", "jsonPath": ".status.observedWatts",
                     "description": "Latest measured power in watts"},
                    {"name": "Forecast", "type": "integer", "jsonPath": ".status.forecastPeakWatts",
                     "description": "Forecast upper bound over the horizon, in watts"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                    {"name": "Mode", "type": "string", "jsonPath": ".status.controlMode",
                     "description": "predictive (acts on the forecast) or reactive (on measured power)"},
                    {"name": "DryRun", "type": "boolean", "jsonPath": ".spec.safety.dryRun", "priority": 1},
                ])


def energystorage_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of ``energystorages.gridshift.io``."""
    return _crd(plural=es.PLURAL, kind=es.KIND, short_name="ess", root=es.EnergyStorage, spec=es.EnergyStorageSpec,
                status=es.EnergyStorageStatus, columns=[
                    {"name": "Driver", "type": "string", "jsonPath": ".spec.driver",
                     "description": "kubernetes or modbus"},
                    {"name": "Capacity", "type": "number", "jsonPath": ".spec.capacityWattHours",
                     "description": "Usable capacity in watt-hours"},
                    {"name": "Setpoint", "type": "number", "jsonPath": ".spec.setpointWatts",
                     "description": "Requested power in watts, positive discharges"},
                    {"name": "SoC", "type": "number", "jsonPath": ".status.socFraction",
                     "description": "State of charge, 0 to 1"},
                    {"name": "Power", "type": "number", "jsonPath": ".status.powerWatts",
                     "description": "Measured power in watts, positive discharges"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status",
                     "priority": 1, "description": "Whether the battery is reachable and sane"},
                ])


def kopf_peering_crd() -> dict[str, Any]:
    """Kopf's ``ClusterKopfPeering`` (kopf.dev/v1): operator replicas see each other through it, and
    only the one with the highest priority acts."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "clusterkopfpeerings.kopf.dev",
                     "labels": {"app.kubernetes.io/part-of": "gridshift"}},
        "spec": {
            "group": "kopf.dev",
            "scope": "Cluster",
            "names": {"kind": "ClusterKopfPeering", "plural": "clusterkopfpeerings",
                      "singular": "clusterkopfpeering"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "Kopf operator peering: the live replicas of an operator and their priorities.",
                    "properties": {
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }},
            }],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [powerpolicy_crd(), energystorage_crd(), kopf_peering_crd()]


def render_yaml(crd: dict[str, Any]) -> str:
    header = "# Generated by `gridshift crd` from gridshift/api; do not edit by hand.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)
