"""What the operator says about a period: Kubernetes Events on the policy, and on the object an
action changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridshift.workloads.registry import BY_KIND


@dataclass
class Event:
    type: str
    reason: str
    message: str
    target: dict[str, Any] | None = None  # another object to post the Event on, besides the policy


def object_ref(target: str) -> dict[str, Any]:
    """The object a ``Kind/namespace/name`` (or ``EnergyStorage/name``) target names, for kopf.event."""
    kind, _, rest = target.partition("/")
    if kind == "EnergyStorage":
        return {"apiVersion": "gridshift.io/v1alpha1", "kind": kind, "metadata": {"name": rest}}
    namespace, _, name = rest.partition("/")
    plugin = BY_KIND.get(kind)
    api_version = plugin.api_version if plugin is not None else "apps/v1"
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}}
