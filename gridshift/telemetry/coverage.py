"""Which governed nodes reported power this period, and what the silent ones are counted at. Pure.

The power query is one ``sum(...)`` over the scope: a node whose exporter stops reporting simply
drops out of the sum, and its load reads as 0 W. So every period the same query is also read
``sum by (<node label>)``, and the nodes that should report (every governed node; for DCGM, those
with GPUs) are checked against those that did. A silent node is counted at the last power it
reported (if it never did, its GPUs at the policy's watts per GPU, or for a node without GPUs the
most any governed node reported), never at 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SUM = re.compile(r"^\s*sum\s*\(")


def per_node_query(query: str, node_label: str) -> str | None:
    """``query`` summed by ``node_label`` instead of over everything, or None when it is not a plain
    ``sum(...)`` (an aggregation with its own ``by`` or ``without``, or none at all), whose per-node
    form cannot be derived."""
    match = _SUM.match(query)
    if match is None:
        return None
    return f"sum by ({node_label}) (" + query[match.end():]


@dataclass(frozen=True)
class Coverage:
    expected: tuple[str, ...]  # nodes that should report, sorted
    missing: tuple[str, ...]   # of those, the ones that did not, sorted
    estimate_w: float          # what the missing ones are counted at

    @property
    def fraction(self) -> float:
        return 1.0 if not self.expected else 1.0 - len(self.missing) / len(self.expected)

    def describe(self, limit: int = 10) -> str:
        names = ", ".join(self.missing[:limit]) + (f" and {len(self.missing) - limit} more"
                                                   if len(self.missing) > limit else "")
        return (f"{len(self.missing)} of {len(self.expected)} governed nodes report no power ({names}); "
                f"counted at {self.estimate_w:.0f} W")


def coverage(nodes: Mapping[str, int], reported: Mapping[str, float], last_good: dict[str, float],
             watts_per_gpu: float, gpu_nodes_only: bool) -> Coverage:
    """Compare the governed ``nodes`` (name -> GPUs) with the per-node ``reported`` watts. Updates
    ``last_good`` with what each node reported and drops nodes no longer governed from it."""
    expected = sorted(n for n, gpus in nodes.items() if gpus > 0 or not gpu_nodes_only)
    for node in list(last_good):
        if node not in nodes:
            del last_good[node]
    for node, watts in reported.items():
        if node in nodes:
            last_good[node] = watts
    missing = tuple(n for n in expected if n not in reported)
    # Never reported: its GPUs at full power, or (no GPUs: a node-level source) the most any node drew.
    busiest = max(last_good.values(), default=0.0)
    estimate = sum(last_good.get(n, nodes[n] * watts_per_gpu or busiest) for n in missing)
    return Coverage(tuple(expected), missing, float(estimate))
