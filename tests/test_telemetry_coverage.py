"""Coverage: which governed nodes reported power, and what the silent ones count at (never 0)."""

from __future__ import annotations

import pytest

from gridshift.telemetry.coverage import coverage, per_node_query


def test_the_per_node_form_of_a_plain_sum() -> None:
    assert per_node_query('sum(DCGM_FI_DEV_POWER_USAGE{Hostname=~"a|b"})', "Hostname") == (
        'sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE{Hostname=~"a|b"})')
    assert per_node_query(" sum (rate(kepler_node_platform_joules_total{instance=~\"a\"}[1m]))", "instance") == (
        'sum by (instance) (rate(kepler_node_platform_joules_total{instance=~"a"}[1m]))')
    assert per_node_query("sum by (rack) (pdu_power_watts{x})", "node") is None, "its own grouping: not derived"
    assert per_node_query("max(pdu_power_watts{x})", "node") is None


def test_silent_nodes_count_at_their_last_power_or_their_gpus_at_full_power() -> None:
    nodes = {"a": 8, "b": 8, "c": 8, "cpu": 0}
    last: dict[str, float] = {}
    first = coverage(nodes, {"a": 3000.0, "b": 2500.0, "c": 2000.0}, last, 700.0, gpu_nodes_only=True)
    assert first.missing == () and first.fraction == 1.0 and first.expected == ("a", "b", "c"), \
        "a node without GPUs need not report DCGM power"
    later = coverage(nodes, {"a": 3100.0}, last, 700.0, gpu_nodes_only=True)
    assert later.missing == ("b", "c") and later.fraction == pytest.approx(1 / 3)
    assert later.estimate_w == 4500.0, "each silent node at the last power it reported"
    fresh = coverage({"a": 8, "d": 4}, {"a": 3000.0}, last, 700.0, gpu_nodes_only=True)
    assert fresh.estimate_w == 4 * 700.0, "never reported: its GPUs at full power, not 0"
    assert set(last) == {"a"}, "nodes no longer governed are forgotten"
    assert "1 of 2 governed nodes report no power (d)" in fresh.describe()


def test_every_node_must_report_for_node_level_sources() -> None:
    cover = coverage({"a": 0, "b": 8}, {"b": 500.0}, {}, 700.0, gpu_nodes_only=False)
    assert cover.missing == ("a",) and cover.estimate_w == 500.0, "a node without GPUs at the busiest node's power"

