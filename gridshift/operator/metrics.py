"""The operator's Prometheus metrics (``gridshift_*``), served on /metrics."""

from __future__ import annotations

import contextlib

from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Gauge, Histogram

from gridshift import __version__

REGISTRY = CollectorRegistry()
REGISTRY.register(PROCESS_COLLECTOR)   # process_resident_memory_bytes, process_cpu_seconds_total, ...
REGISTRY.register(PLATFORM_COLLECTOR)  # python_info

BUILD_INFO = Gauge("gridshift_build_info", "Always 1; the running gridshift's version.", ["version"],
                   registry=REGISTRY)
BUILD_INFO.labels(__version__).set(1)

POLICIES = Gauge("gridshift_policies", "PowerPolicies in the cluster, counted by every replica, active or standby.",
                 registry=REGISTRY)
CONTROLLED = Gauge("gridshift_policies_controlled",
                   "PowerPolicies whose control loop runs in this replica (0 on a standby).", registry=REGISTRY)
CACHED_OBJECTS = Gauge("gridshift_cached_objects", "Objects of each kind the watch caches hold (what a period "
                       "reads of the cluster).", ["kind"], registry=REGISTRY)
OBSERVED = Gauge("gridshift_observed_watts", "Latest measured power of the governed nodes.", ["policy"],
                 registry=REGISTRY)
FORECAST = Gauge("gridshift_forecast_watts", "Forecast upper bound over the policy's horizon.", ["policy"],
                 registry=REGISTRY)
BUDGET = Gauge("gridshift_budget_watts", "The policy's power cap.", ["policy"], registry=REGISTRY)
TRIGGER = Gauge("gridshift_trigger_watts", "Forecast level at which the policy acts.", ["policy"], registry=REGISTRY)
PEAK_RISK = Gauge("gridshift_peak_risk_ratio", "Probability of crossing the cap within the horizon.", ["policy"],
                  registry=REGISTRY)
FORECAST_ERROR = Gauge("gridshift_forecast_error_ratio",
                       "Recent mean absolute forecast error over mean measured power.", ["policy"], registry=REGISTRY)
BOUND_COVERAGE = Gauge("gridshift_forecast_bound_coverage_ratio",
                       "Share of recent forecast upper bounds the measured power stayed under.", ["policy"],
                       registry=REGISTRY)
DEGRADED = Gauge("gridshift_policy_degraded", "1 while the policy holds because its telemetry cannot be trusted.",
                 ["policy"], registry=REGISTRY)
COVERAGE = Gauge("gridshift_telemetry_coverage_ratio", "Share of the governed nodes that reported power in the "
                 "last period.", ["policy"], registry=REGISTRY)
REACTIVE = Gauge("gridshift_policy_reactive", "1 while the policy acts on measured power instead of the forecast.",
                 ["policy"], registry=REGISTRY)
SKILL = Gauge("gridshift_forecast_skill_ratio",
              "The forecast median's recent matured error over persistence's, the worst horizon planned on "
              "(above 1: the policy plans on persistence).", ["policy"], registry=REGISTRY)
ACTIONS = Counter("gridshift_actions_total", "Actions decided, by rung and verb; dry_run says if only reported.",
                  ["policy", "rung", "verb", "dry_run"], registry=REGISTRY)
WOULD_SHAVE = Gauge("gridshift_would_shave_watts", "Watts the last period's actions would shave (dry-run only).",
                    ["policy"], registry=REGISTRY)
SHAVED = Gauge("gridshift_shaved_watts", "Expected watts currently shaved by the policy's applied actions.",
               ["policy"], registry=REGISTRY)
BATTERY_ENDURANCE = Gauge("gridshift_battery_endurance_seconds",
                          "How long the battery's energy above the reserve lasts at its recent mean discharge "
                          "(+Inf while it is not discharging).", ["policy"], registry=REGISTRY)
BATTERY_MARGIN = Gauge("gridshift_battery_paced_margin_watts",
                       "Watts of the margin between trigger and cap the paced battery leaves to the forecast.",
                       ["policy"], registry=REGISTRY)
UNCOVERED = Gauge("gridshift_uncovered_watts", "Part of the forecast shortfall the ladder could not cover.",
                  ["policy"], registry=REGISTRY)
BATTERY_SOC = Gauge("gridshift_battery_soc_ratio", "State of charge of the policy's battery (NaN while unknown).",
                    ["policy"], registry=REGISTRY)
BATTERY_SETPOINT = Gauge("gridshift_battery_setpoint_watts", "The policy battery's setpoint: > 0 discharges, < 0 "
                         "charges.", ["policy"], registry=REGISTRY)
BATTERY_READY = Gauge("gridshift_battery_ready", "1 while the policy's battery can be used (its EnergyStorage is "
                      "Ready and reports a state of charge), else 0.", ["policy"], registry=REGISTRY)
ERRORS = Counter("gridshift_errors_total", "Failures by kind: telemetry (Prometheus unreachable or refusing), "
                 "inventory (API reads), period (a period that raised).", ["policy", "kind"], registry=REGISTRY)
LOOP_SECONDS = Histogram("gridshift_loop_duration_seconds", "Duration of one control period's work.", ["policy"],
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)


SITE_SURPLUS = Gauge("gridshift_site_surplus_watts",
                     "Renewable supply less load of a migration site (NaN while unknown).", ["policy", "site"],
                     registry=REGISTRY)
SITE_WINDOW = Gauge("gridshift_site_window_seconds", "Forecast time a migration site's current surplus lasts.",
                    ["policy", "site"], registry=REGISTRY)
MIGRATIONS = Counter("gridshift_migrations_total", "Job moves by the step reached: Checkpointing (started), Moved, "
                     "RolledBack.", ["policy", "phase"], registry=REGISTRY)
_sites: dict[str, set[str]] = {}


def sites(policy: str, values: dict[str, tuple[float, float]]) -> None:
    """Set each site's (surplus W, window s); drop the series of sites no longer in the policy."""
    for name in _sites.get(policy, set()) - set(values):
        for metric in (SITE_SURPLUS, SITE_WINDOW):
            with contextlib.suppress(KeyError):
                metric.remove(policy, name)
    _sites[policy] = set(values)
    for name, (surplus_w, window_s) in values.items():
        SITE_SURPLUS.labels(policy, name).set(surplus_w)
        SITE_WINDOW.labels(policy, name).set(window_s)


def forget(policy: str) -> None:
    """Drop a policy's gauges: when it is deleted, and when this replica stops controlling it (a
    standby after peering paused it must not keep exporting the last values it saw). Counters and
    the loop histogram stay: they count what this process did."""
    for metric in (OBSERVED, FORECAST, BUDGET, TRIGGER, PEAK_RISK, FORECAST_ERROR, BOUND_COVERAGE, DEGRADED, REACTIVE,
                   SKILL, WOULD_SHAVE, SHAVED, BATTERY_ENDURANCE, BATTERY_MARGIN, COVERAGE, UNCOVERED, BATTERY_SOC,
                   BATTERY_SETPOINT, BATTERY_READY):
        with contextlib.suppress(KeyError):
            metric.remove(policy)
    sites(policy, {})
    _sites.pop(policy, None)
