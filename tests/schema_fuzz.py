"""Generated PowerPolicy and EnergyStorage documents, and the check that the API server (the CRD's
OpenAPI schema and CEL rules) and the operator's pydantic models agree on each.

Each document is a valid one (the bundled example, or the smallest valid spec) with one to three
mutations at paths taken from the CRD's own schema: a value of the field's type drawn near and
beyond its bounds, a value of another type, null, the field removed, or an unknown field added.
:func:`verdict` sends it to the API server as a dry-run create with strict field validation (what
kubectl does) and validates it with the models: where the server accepts, the models must accept
what it would store (that is what the operator reads); where it refuses, its message must name a
field under ``spec`` and the models must refuse the document too.

Shared by ``tests/integration/test_schema_fuzz.py`` (a short run in CI) and ``bench/schema_fuzz.py``
(at least 1,000 documents).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st
from kubernetes import client
from pydantic import BaseModel, ValidationError

from gridshift.api.energystorage import EnergyStorageSpec
from gridshift.api.powerpolicy import API_GROUP, API_VERSION, PowerPolicySpec
from tests.policy_cases import minimal_spec, sample_policy

CRDS = Path(__file__).resolve().parents[1] / "crds"

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    crd: Path
    model: type[BaseModel]
    bases: tuple[dict[str, Any], ...]


BATTERIES: tuple[dict[str, Any], ...] = (
    {"capacityWattHours": 2_000_000, "maxDischargeWatts": 500_000, "maxChargeWatts": 250_000},
    {"driver": "modbus", "capacityWattHours": 20_000, "maxDischargeWatts": 10_000, "maxChargeWatts": 5_000,
     "reserveFraction": 0.1, "setpointWatts": 0,
     "modbus": {"host": "10.0.0.7", "port": 502, "revertSeconds": 6, "pollSeconds": 1}},
)


def kinds() -> dict[str, Kind]:
    return {
        "PowerPolicy": Kind("PowerPolicy", "powerpolicies", CRDS / "powerpolicies.gridshift.io.yaml",
                            PowerPolicySpec, (sample_policy()["spec"], minimal_spec())),
        "EnergyStorage": Kind("EnergyStorage", "energystorages", CRDS / "energystorages.gridshift.io.yaml",
                              EnergyStorageSpec, BATTERIES),
    }


@functools.cache
def spec_schema(crd: Path) -> dict[str, Any]:
    doc = yaml.safe_load(crd.read_text())
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def field_paths(schema: dict[str, Any], prefix: Path_ = ()) -> list[tuple[Path_, dict[str, Any]]]:
    """Every field of the schema as (path, its schema); an array's items are at index 0 and a map's
    values under a generated key."""
    out = [(prefix, schema)] if prefix else []
    for key, sub in (schema.get("properties") or {}).items():
        out += field_paths(sub, (*prefix, key))
    if isinstance(schema.get("items"), dict):
        out += field_paths(schema["items"], (*prefix, 0))
    if isinstance(schema.get("additionalProperties"), dict):
        out += field_paths(schema["additionalProperties"], (*prefix, "fuzz.example/key"))
    return out


@functools.cache
def _fields(crd: Path) -> list[tuple[Path_, dict[str, Any]]]:
    return field_paths(spec_schema(crd))


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-(10**15), 10**15),
                 st.floats(allow_nan=False, allow_infinity=False, width=32),
                 st.text(max_size=12), st.lists(st.integers(-5, 5), max_size=2),
                 st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=1))


def typed_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the field's own type, drawn around its declared bounds and enum."""
    kind = schema.get("type")
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), st.text(max_size=8))
    if kind in ("number", "integer"):
        edges = [schema[b] for b in ("minimum", "maximum") if b in schema]
        near = [e + d for e in edges for d in (-1, -0.5, 0, 0.5, 1)]
        number = st.integers(-(10**9), 10**9) if kind == "integer" else st.floats(-1e9, 1e9, allow_nan=False)
        return st.one_of(st.sampled_from([*near, 0, 1, -1, 0.5]) if near else st.just(0), number)
    if kind == "string":
        return st.one_of(st.text(max_size=24), st.sampled_from(["", "a", "x" * 300, "Mon", "25:00", "08:00",
                                                                 "ns/name", "http://p:9090", "$selector"]))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(typed_values(schema.get("items") or {}), max_size=3)
    if kind == "object":
        return st.one_of(st.just({}), st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2))
    return _ANY


def _set(doc: dict[str, Any], path: Path_, value: Any) -> None:
    node: Any = doc
    for here, nxt in itertools.pairwise(path):
        blank: Any = [] if isinstance(nxt, int) else {}
        if isinstance(here, int):
            if not isinstance(node, list):
                return
            if not node:
                node.append(blank)
            node = node[0]
        else:
            if not isinstance(node, dict):
                return
            if not isinstance(node.get(here), (dict, list)):
                node[here] = blank
            node = node[here]
    last = path[-1]
    if isinstance(last, int):
        if isinstance(node, list):
            node[:1] = [] if value is ... else [value]
    elif isinstance(node, dict):
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value


@st.composite
def mutated_specs(draw: st.DrawFn, kind: Kind) -> tuple[dict[str, Any], list[str]]:
    """A spec of ``kind`` with 1-3 mutations, and what each mutation did (for the report)."""
    spec = copy.deepcopy(draw(st.sampled_from(kind.bases)))
    fields = _fields(kind.crd)
    done = []
    for _ in range(draw(st.integers(1, 3))):
        path, schema = draw(st.sampled_from(fields))
        how = draw(st.sampled_from(["typed", "typed", "typed", "other type", "null", "remove", "unknown field"]))
        if how == "typed":
            value = draw(typed_values(schema))
        elif how == "other type":
            value = draw(_ANY)
        elif how == "null":
            value = None
        elif how == "remove":
            value = ...
        else:
            path, value = (*path, draw(st.sampled_from(["extra", "capwatts", "Spec"]))), 1
        _set(spec, path, value)
        done.append(f"{how} {'.'.join(str(p) for p in path)}" + ("" if value is ... else f" = {value!r:.60}"))
    return spec, done


# Checks only the operator can make, each refused by the models naming the field (the policy goes
# Degraded with it), while the API server accepts: the server has no IANA time zone database in CEL.
OPERATOR_ONLY = {"tariff.timeZone": "an IANA time zone name"}  # the last part is what the error names


@dataclass(frozen=True)
class Verdict:
    server_accepted: bool
    server_message: str
    operator_accepted: bool
    operator_message: str

    @property
    def agree(self) -> bool:
        return self.server_accepted == self.operator_accepted

    @property
    def operator_only(self) -> bool:
        """The server accepted and the models refused only a field that :data:`OPERATOR_ONLY` names."""
        errors = self.operator_message.split("; ")
        return (self.server_accepted and not self.operator_accepted and len(errors) == 1
                and any(field.rsplit(".", 1)[-1] in errors[0] for field in OPERATOR_ONLY))

    @property
    def names_a_field(self) -> bool:
        """A refusal names a field under ``spec`` (or the server accepted)."""
        return self.server_accepted or "spec" in self.server_message


def _validate(model: type[BaseModel], spec: Any) -> tuple[bool, str]:
    try:
        model.model_validate(spec if isinstance(spec, dict) else {})
    except ValidationError as exc:
        return False, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return True, ""


def verdict(custom: client.CustomObjectsApi, kind: Kind, spec: dict[str, Any]) -> Verdict:
    body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind.kind,
            "metadata": {"name": f"fuzz-{uuid.uuid4().hex[:10]}"}, "spec": spec}
    try:
        stored = custom.create_cluster_custom_object(API_GROUP, API_VERSION, kind.plural, body,
                                                     dry_run="All", field_validation="Strict")
    except client.ApiException as exc:
        if exc.status not in (400, 422):
            raise
        message = json.loads(exc.body or "{}").get("message", str(exc.body))
        ok, why = _validate(kind.model, spec)
        return Verdict(False, message, ok, why)
    ok, why = _validate(kind.model, stored.get("spec"))
    return Verdict(True, "", ok, why)
