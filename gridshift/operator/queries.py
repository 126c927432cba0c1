"""The PromQL a policy reads its power with, for its whole scope or for one migration site."""

from __future__ import annotations

from collections.abc import Iterable

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.telemetry.prometheus import node_matcher

SOURCE_QUERY = {"dcgm": "gpu_power", "kepler": "node_power", "pdu": "pdu_power"}


def power_query(spec: PowerPolicySpec, nodes: Iterable[str]) -> str:
    """The policy's power query (``spec.telemetry``: its source's query) over exactly ``nodes``."""
    matcher = node_matcher(spec.telemetry.node_label, sorted(nodes))
    template: str = getattr(spec.telemetry.queries, SOURCE_QUERY[spec.telemetry.source])
    return template.replace("$selector", matcher)
