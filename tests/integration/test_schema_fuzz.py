"""Generated PowerPolicy and EnergyStorage documents on the real API server: each is refused naming
a field, or accepted and read by the operator's models; the two never disagree, except on the
checks only the operator can make (``OPERATOR_ONLY``: an IANA time zone), which the models refuse
naming the field (tests/schema_fuzz.py; ``python bench/schema_fuzz.py`` runs a thousand and more)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from kubernetes import client

from tests.conftest import Kube
from tests.schema_fuzz import kinds, mutated_specs, verdict

pytestmark = pytest.mark.cluster
KINDS = kinds()


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_api_server_and_the_operator_agree_on_generated_documents(kube: Kube, kind: str) -> None:
    custom = client.CustomObjectsApi(kube.api)

    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_specs(KINDS[kind]))
    def check(case: tuple[dict, list[str]]) -> None:
        spec, mutations = case
        seen = verdict(custom, KINDS[kind], spec)
        assert seen.names_a_field, (mutations, seen.server_message)
        assert seen.agree or seen.operator_only, (mutations, seen)

    check()
