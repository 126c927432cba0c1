"""Simulators that run the planner's pure models over real traces (no cluster, no I/O besides input)."""
