"""The PowerPolicy API types and the CRD generated from them (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from gridshift.api.crd import all_crds, render_yaml
from gridshift.api.powerpolicy import PowerPolicy, PowerPolicySpec
from gridshift.cli import main
from tests.policy_cases import INVALID_SPECS, VALID_SPECS, policy, sample_policy

ROOT = Path(__file__).resolve().parents[1]


def error_paths(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted field path, message) for each pydantic error, paths as the API server writes them."""
    out = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        out.append((path.lstrip("."), err["msg"]))
    return out


def names_field(exc: ValidationError, expected: str) -> bool:
    leaf = expected.rsplit(".", 1)[-1].split("[")[0]
    for path, msg in error_paths(exc):
        if path == expected or expected.startswith(path + "[") or path.startswith(expected):
            return True
        if expected.startswith(path) and leaf in msg:
            return True
    return False


def test_committed_crds_are_generated_from_the_models():
    for crd in all_crds():
        committed = (ROOT / "crds" / f"{crd['metadata']['name']}.yaml").read_text()
        assert committed == render_yaml(crd), "crds/ is stale: run `gridshift crd --write crds`"


def test_committed_api_reference_is_generated_from_the_models():
    from gridshift.api.reference import api_reference

    committed = (ROOT / "docs" / "reference" / "api.md").read_text()
    assert committed == api_reference(all_crds()), \
        "docs/reference/api.md is stale: run `gridshift crd --reference docs/reference/api.md`"


def test_crd_schema_is_structural():
    """No construct the API server refuses in a structural schema survives the conversion."""
    forbidden = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "title", "const"}

    def walk(node, path="$"):
        if isinstance(node, dict):
            bad = forbidden & node.keys()
            assert not bad, f"{path} has {bad}"
            assert node.get("additionalProperties", True) is not False, path
            if "properties" in node:
                assert node.get("type") == "object", path
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    for crd in all_crds():
        walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], crd["metadata"]["name"])


def test_every_spec_field_is_documented():
    undocumented = []

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            if not sub.get("description"):
                undocumented.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
            if "items" in sub:
                walk(sub["items"], f"{path}.{name}[]")

    for crd in all_crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(schema["properties"].get("spec", {}), f"{crd['spec']['names']['kind']}.spec")
    assert undocumented == []


def test_cli_crd_prints_the_same_crd(capsys):
    assert main(["crd"]) == 0
    assert list(yaml.safe_load_all(capsys.readouterr().out)) == all_crds()


def test_sample_policy_validates_with_defaults_filled():
    pol = PowerPolicy.model_validate(sample_policy())
    assert pol.spec.budget.cap_watts == 2_000_000
    assert pol.spec.safety.dry_run is True
    assert pol.spec.migration.enabled is False  # absent group gets its defaults


def test_minimal_policy_defaults():
    spec = PowerPolicySpec.model_validate({"budget": {"capWatts": 1000}})
    assert spec.budget.effective_trigger_watts == pytest.approx(950)
    assert spec.safety.dry_run is True, "a new policy must start in dry-run"
    assert spec.workloads.ladder == ["battery", "scaleDown", "suspend"]
    assert spec.safety.period_seconds == 15


@pytest.mark.parametrize(("case", "spec", "field"), INVALID_SPECS, ids=[c[0] for c in INVALID_SPECS])
def test_models_reject_malformed_policy_naming_the_field(case, spec, field):
    with pytest.raises(ValidationError) as info:
        PowerPolicy.model_validate(policy(case, spec))
    assert names_field(info.value, field), f"{field} not named in: {error_paths(info.value)}"


@pytest.mark.parametrize(("case", "spec"), VALID_SPECS, ids=[c[0] for c in VALID_SPECS])
def test_models_accept_valid_policy(case, spec):
    PowerPolicy.model_validate(policy(case, spec))


def test_yes_is_not_a_boolean():
    """Lax coercion would read dryRun: "no" as False and start acting: the models are strict."""
    with pytest.raises(ValidationError):
        PowerPolicySpec.model_validate({"budget": {"capWatts": 1000}, "safety": {"dryRun": "no"}})


def test_an_invalid_match_labels_key_is_refused_by_the_operator_naming_it():
    """The API server cannot afford a CEL rule over map keys; the operator refuses the key by name."""
    spec = sample_policy()["spec"]
    spec["scope"]["nodeSelector"] = {"matchLabels": {"-bad key": "x"}}
    with pytest.raises(ValidationError, match="matchLabels key '-bad key' is not a valid label key"):
        PowerPolicy.model_validate(policy("bad-key", spec))


def test_prometheus_auth_headers_cannot_smuggle_credentials():
    spec = sample_policy()["spec"]
    spec["telemetry"] = {"auth": {"headers": [{"name": "authorization", "value": "Bearer stolen"}]}}
    with pytest.raises(ValidationError, match="Authorization header comes from secretRef"):
        PowerPolicy.model_validate(policy("auth-header", spec))
    spec["telemetry"] = {"auth": {"headers": [{"name": "X-Scope-OrgID", "value": "a"},
                                              {"name": "X-Scope-OrgID", "value": "b"}]}}
    with pytest.raises(ValidationError, match="each name once"):
        PowerPolicy.model_validate(policy("twice", spec))
    spec["telemetry"] = {"auth": {"headers": [{"name": "X-Scope-OrgID", "value": "tenant-a"}],
                                  "insecureSkipVerify": True}}
    parsed = PowerPolicy.model_validate(policy("tenant", spec))
    assert [(h.name, h.value) for h in parsed.spec.telemetry.auth.headers] == [("X-Scope-OrgID", "tenant-a")]
