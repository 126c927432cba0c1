"""The PowerPolicy CRD on a real API server: installed, served, validated, defaulted."""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes import client

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.operator.status import whole_watts
from tests.conftest import Kube
from tests.policy_cases import INVALID_SPECS, VALID_SPECS, minimal_spec, policy, sample_policy

pytestmark = pytest.mark.cluster

GROUP, VERSION, PLURAL = "gridshift.io", "v1alpha1", "powerpolicies"


def create(kube: Kube, body: dict) -> dict:
    # Strict field validation is what kubectl does by default: unknown fields are errors.
    return kube.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body, field_validation="Strict")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def _drop_empty(node):
    if isinstance(node, dict):
        cleaned = {k: _drop_empty(v) for k, v in node.items()}
        return {k: v for k, v in cleaned.items() if v not in ({}, [])}
    if isinstance(node, list):
        return [_drop_empty(v) for v in node]
    return node


def test_crd_is_established_with_short_name_and_status_subresource(kube: Kube):
    crd = client.ApiextensionsV1Api(kube.api).read_custom_resource_definition("powerpolicies.gridshift.io")
    assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)
    assert crd.spec.scope == "Cluster"
    assert "pp" in crd.spec.names.short_names
    assert crd.spec.versions[0].subresources.status is not None


def test_sample_policy_is_accepted_and_listed_with_printer_columns(kube: Kube):
    body = sample_policy()
    body["metadata"]["name"] = unique("site-2mw")
    created = create(kube, body)
    try:
        assert created["spec"]["budget"]["capWatts"] == 2_000_000
        # What `kubectl get pp` shows: the server-side table with the printer columns.
        method, url, headers, _, _ = kube.api.param_serialize(
            "GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}/{body['metadata']['name']}",
            header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
            auth_settings=["BearerToken"],
        )
        resp = kube.api.call_api(method, url, header_params=headers)
        resp.read()
        table = json.loads(resp.data)
        columns = [c["name"] for c in table["columnDefinitions"]]
        assert columns[:7] == ["Name", "Budget", "Observed", "Forecast", "Phase", "Ready", "Mode"]
        assert table["rows"][0]["cells"][1] == 2_000_000
        # Once the operator has written a status: whole watts, the Ready condition and the mode.
        kube.custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURAL, body["metadata"]["name"], {"status": {
            "observedWatts": whole_watts(1_873_456.2), "forecastPeakWatts": whole_watts(2_104_000.7),
            "phase": "Watching", "controlMode": "predictive", "conditions": [
                {"type": "Ready", "status": "True", "reason": "Controlling", "message": "",
                 "lastTransitionTime": "2026-12-01T00:00:00Z"}]}})
        resp = kube.api.call_api(method, url, header_params=headers)
        resp.read()
        cells = json.loads(resp.data)["rows"][0]["cells"]
        assert cells[2:7] == [1_873_456, 2_104_001, "Watching", "True", "predictive"]
    finally:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, body["metadata"]["name"])


def test_server_defaults_match_the_operator_models(kube: Kube):
    """A sparse policy gets the same defaults from the API server as from the pydantic models."""
    name = unique("minimal")
    created = create(kube, policy(name, minimal_spec()))
    try:
        server_spec = created["spec"]
        assert server_spec["safety"]["dryRun"] is True
        assert server_spec["workloads"]["ladder"] == ["battery", "scaleDown", "suspend"]
        ours = PowerPolicySpec.model_validate(minimal_spec()).model_dump(by_alias=True, exclude_none=True)
        assert _drop_empty(server_spec) == _drop_empty(ours)
        # And the models accept exactly what the server stored.
        PowerPolicySpec.model_validate(server_spec)
    finally:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)


@pytest.mark.parametrize(("case", "spec"), VALID_SPECS, ids=[c[0] for c in VALID_SPECS])
def test_valid_policies_are_accepted(kube: Kube, case, spec):
    name = unique(case)
    create(kube, policy(name, spec))
    kube.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)


@pytest.mark.parametrize(("case", "spec", "field"), INVALID_SPECS, ids=[c[0] for c in INVALID_SPECS])
def test_malformed_policies_are_rejected_naming_the_field(kube: Kube, case, spec, field):
    with pytest.raises(client.ApiException) as info:
        create(kube, policy(unique(case), spec))
    assert info.value.status in (400, 422), info.value.body  # 400: unknown field (strict decoding)
    message = json.loads(info.value.body)["message"]
    assert field in message, message


def test_status_is_written_through_the_subresource_only(kube: Kube):
    name = unique("status")
    create(kube, policy(name, minimal_spec()))
    try:
        # A status in the main resource is ignored ...
        kube.custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {"status": {"phase": "Acting"}})
        assert "status" not in kube.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        # ... and validated when written through /status.
        kube.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, PLURAL, name, {"status": {"phase": "Watching", "observedWatts": 1234}}
        )
        got = kube.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        assert got["status"]["phase"] == "Watching"
        with pytest.raises(client.ApiException) as info:
            kube.custom.patch_cluster_custom_object_status(
                GROUP, VERSION, PLURAL, name, {"status": {"phase": "Exploding"}}
            )
        assert "status.phase" in json.loads(info.value.body)["message"]
    finally:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
