"""PowerPolicy documents shared by the schema tests: the API server (CRD with OpenAPI and CEL)
and the operator's pydantic models must agree on every one of them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "policies" / "site-2mw.yaml"


def sample_policy() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def minimal_spec() -> dict[str, Any]:
    return {"budget": {"capWatts": 100000}}


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``base`` (the sample's spec) with ``path`` ("a.b.c") set, or removed for ``...``."""
    spec = copy.deepcopy(base if base is not None else sample_policy()["spec"])
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return spec


# (id, spec, field path the error must name)
INVALID_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("cap-not-a-number", _with("budget.capWatts", "2MW"), "spec.budget.capWatts"),
    ("cap-negative", _with("budget.capWatts", -5), "spec.budget.capWatts"),
    ("cap-zero", _with("budget.capWatts", 0), "spec.budget.capWatts"),
    ("cap-missing", _with("budget.capWatts", ...), "spec.budget.capWatts"),
    ("budget-missing", _with("budget", ...), "spec.budget"),
    ("trigger-above-cap", _with("budget.triggerWatts", 2500000), "spec.budget.triggerWatts"),
    ("trigger-equals-cap", _with("budget.triggerWatts", 2000000), "spec.budget.triggerWatts"),
    ("unknown-rung", _with("workloads.ladder", ["battery", "shutdown"]), "spec.workloads.ladder[1]"),
    ("duplicate-rung", _with("workloads.ladder", ["suspend", "suspend"]), "spec.workloads.ladder"),
    ("empty-ladder", _with("workloads.ladder", []), "spec.workloads.ladder"),
    ("migrate-without-sites", _with("workloads.ladder", ["scaleDown", "migrate"]), "spec.workloads.ladder"),
    ("reserve-at-one", _with("storage.reserveFraction", 1.0), "spec.storage.reserveFraction"),
    ("storage-without-ref", _with("storage.energyStorageRef", ...), "spec.storage.energyStorageRef"),
    ("endurance-over-a-day", _with("storage.enduranceSeconds", 90000), "spec.storage.enduranceSeconds"),
    ("confidence-above-one", _with("forecast.confidence", 1.5), "spec.forecast.confidence"),
    # An integer below a fractional minimum: the OpenAPI check truncates the bound (0 passed 0.5).
    ("confidence-integer-zero", _with("forecast.confidence", 0), "spec.forecast.confidence"),
    ("horizon-fractional", _with("forecast.horizonSeconds", 2.5), "spec.forecast.horizonSeconds"),
    ("period-zero", _with("safety.periodSeconds", 0), "spec.safety.periodSeconds"),
    ("dry-run-not-bool", _with("safety.dryRun", "yes"), "spec.safety.dryRun"),
    ("prometheus-url-scheme", _with("telemetry.prometheusUrl", "ftp://prom:9090"), "spec.telemetry.prometheusUrl"),
    ("telemetry-source-unknown", _with("telemetry.source", "ipmi"), "spec.telemetry.source"),
    (
        "selector-operator-unknown",
        _with("scope.nodeSelector", {"matchExpressions": [{"key": "a", "operator": "Like"}]}),
        "spec.scope.nodeSelector.matchExpressions[0].operator",
    ),
    ("unknown-field", _with("budget.capWats", 5), "spec.budget.capWats"),
    (
        "site-duplicate",
        _with("migration", {"enabled": True, "sites": [
            {"name": "b", "bandwidthBitsPerSecond": 1e10}, {"name": "b", "bandwidthBitsPerSecond": 1e9}]}),
        "spec.migration.sites",
    ),
    (
        "site-without-nodes",
        _with("migration", {"enabled": True, "sites": [{"name": "b", "bandwidthBitsPerSecond": 1e10}]}),
        "spec.migration.sites[0].nodeSelector",
    ),
    ("migration-step-too-short", _with("migration.stepSeconds", 1), "spec.migration.stepSeconds"),
    # A query that does not narrow to the governed nodes reads a constant or the whole cluster as theirs.
    ("query-without-selector", _with("telemetry.queries", {"gpuPower": "vector(0)"}),
     "spec.telemetry.queries.gpuPower"),
    ("node-query-without-selector", _with("telemetry.queries", {"nodePower": "sum(kepler_node_platform_joules_total)"}),
     "spec.telemetry.queries.nodePower"),
    ("coverage-above-one", _with("telemetry.minCoverageFraction", 1.5), "spec.telemetry.minCoverageFraction"),
    # What the API server once stored and the operator then refused or misread: both refuse it now.
    ("label-key-invalid", _with("scope.nodeSelector", {"matchExpressions": [
        {"key": "bad key!", "operator": "Exists"}]}), "spec.scope.nodeSelector.matchExpressions[0].key"),
    ("exists-with-values", _with("scope.nodeSelector", {"matchExpressions": [
        {"key": "gpu", "operator": "Exists", "values": ["a"]}]}), "spec.scope.nodeSelector.matchExpressions[0].values"),
    ("in-without-values", _with("scope.nodeSelector", {"matchExpressions": [
        {"key": "gpu", "operator": "In"}]}), "spec.scope.nodeSelector.matchExpressions[0].values"),
    ("match-labels-value-invalid", _with("scope.nodeSelector", {"matchLabels": {"rack": "not valid!"}}),
     "spec.scope.nodeSelector.matchLabels.rack"),
    ("charge-target-below-reserve", _with("storage.chargeTargetFraction", 0.1), "spec.storage.chargeTargetFraction"),
]

VALID_SPECS: list[tuple[str, dict[str, Any]]] = [
    ("sample", sample_policy()["spec"]),
    ("minimal", minimal_spec()),
    ("no-storage-default-ladder", _with("storage", ...)),
    (
        "migration",
        _with(
            "migration",
            {"enabled": True, "marginFraction": 0.3, "stepSeconds": 900, "sites": [
                {"name": "site-a", "bandwidthBitsPerSecond": 1e10, "nodeSelector": {"matchLabels": {"s": "a"}}},
                {"name": "site-b", "bandwidthBitsPerSecond": 1e10, "budgetWatts": 2e6,
                 "renewableQuery": 'sum(site_renewable_power_watts{site="b"})',
                 "nodeSelector": {"matchExpressions": [{"key": "s", "operator": "In", "values": ["b"]}]}}]},
            _with("workloads.ladder", ["battery", "scaleDown", "suspend", "migrate"]),
        ),
    ),
]


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gridshift.io/v1alpha1", "kind": "PowerPolicy", "metadata": {"name": name}, "spec": spec}
