"""API types of the ``PowerPolicy`` resource (``gridshift.io/v1alpha1``, cluster-scoped).

This file is the single source of the resource's schema: ``gridshift crd`` renders the
CustomResourceDefinition in ``crds/`` from these models (descriptions, ranges, enums, defaults
and the CEL rules in ``x-kubernetes-validations``), and the operator validates every object it
reads with the same models. Cross-field rules are written twice on purpose, once as CEL for the
API server and once as a pydantic validator for the operator; ``tests/test_api_schema.py``
proves both accept and reject the same documents.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

API_GROUP = "gridshift.io"
API_VERSION = "v1alpha1"
KIND = "PowerPolicy"
PLURAL = "powerpolicies"

Rung = Literal["battery", "scaleDown", "suspend", "migrate"]
DEFAULT_LADDER: list[Rung] = ["battery", "scaleDown", "suspend"]

_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One entry of ``x-kubernetes-validations``."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class ApiModel(BaseModel):
    """Base of every API type: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True
    )


# A label key (an optional DNS-subdomain prefix and a name) and a label value, as the API server checks them.
LABEL_KEY = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
             r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


class LabelSelectorRequirement(ApiModel):
    """A label selector requirement, as in Kubernetes' `LabelSelectorRequirement`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("(self.operator in ['Exists', 'DoesNotExist']) == (!has(self.values) || size(self.values) == 0)",
                    "values must be empty for Exists and DoesNotExist, and non-empty for In and NotIn", ".values")
            ]
        }
    )

    key: str = Field(description="The label key that the selector applies to.", min_length=1, max_length=317,
                     pattern=LABEL_KEY)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values."
    )
    values: list[Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=list,
        max_length=64,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if (self.operator in ("Exists", "DoesNotExist")) != (not self.values):
            raise ValueError("values must be empty for Exists and DoesNotExist, and non-empty for In and NotIn")
        return self


class LabelSelector(ApiModel):
    """A Kubernetes label selector. An empty selector matches everything."""

    # The API server checks matchLabels values by pattern; a CEL rule over its keys costs more than a CRD
    # may spend (keys have no length bound in a structural schema), so an invalid key is refused by the
    # operator (status names it), not at admission.
    match_labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] = Field(
        default_factory=dict, max_length=64, description="Labels that must all be present with these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="Requirements that must all hold."
    )

    @model_validator(mode="after")
    def _label_keys(self) -> LabelSelector:
        for key in self.match_labels:
            if not re.match(LABEL_KEY, key) or len(key) > 317:
                raise ValueError(f"matchLabels key {key!r} is not a valid label key")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether an object with ``labels`` is selected, as the API server's label selection decides."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            held = {
                "In": present and labels.get(req.key) in req.values,
                "NotIn": not present or labels.get(req.key) not in req.values,
                "Exists": present,
                "DoesNotExist": not present,
            }[req.operator]
            if not held:
                return False
        return True


class Scope(ApiModel):
    """Which nodes' power this policy governs."""

    node_selector: LabelSelector = Field(
        default_factory=LabelSelector,
        description="Nodes whose measured power counts against the budget. Empty selects every node.",
    )


class Budget(ApiModel):
    """The power cap and the level at which gridshift starts acting."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.triggerWatts) || self.triggerWatts < self.capWatts",
                    "triggerWatts must be below capWatts",
                    ".triggerWatts",
                )
            ]
        }
    )

    cap_watts: float = Field(
        gt=0,
        le=1e10,
        description="Contracted peak in watts for the selected nodes. Measured power must stay below it.",
    )
    trigger_watts: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Forecast power (upper bound) at which actions start. Must be below capWatts. "
            "Unset means 95% of capWatts."
        ),
    )

    @model_validator(mode="after")
    def _trigger_below_cap(self) -> Budget:
        if self.trigger_watts is not None and self.trigger_watts >= self.cap_watts:
            raise ValueError("triggerWatts must be below capWatts")
        return self

    @property
    def effective_trigger_watts(self) -> float:
        return self.trigger_watts if self.trigger_watts is not None else 0.95 * self.cap_watts


class TelemetryQueries(ApiModel):
    """PromQL for each signal. ``$selector`` is replaced by a label matcher for the governed nodes:
    every query must contain it, or it would read power from outside the policy's scope (or a
    constant such as ``vector(0)``) as if it were the governed nodes'."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                *(cel(f"!has(self.{field}) || self.{field}.contains('$selector')", f"{field} must contain $selector "
                    "(the governed nodes' label matcher)", f".{field}")
                  for field in ("gpuPower", "nodePower", "pduPower")),
                cel("!has(self.podPower) || self.podPower == '' || self.podPower.contains('$selector')",
                    "podPower must contain $selector (the governed nodes' label matcher) or be empty", ".podPower")]
        }
    )

    gpu_power: str = Field(
        default="sum(DCGM_FI_DEV_POWER_USAGE{$selector})",
        max_length=4096,
        description="Total GPU power in watts (DCGM exporter).",
    )
    node_power: str = Field(
        default="sum(rate(kepler_node_platform_joules_total{$selector}[1m]))",
        max_length=4096,
        description="Whole-node power in watts (Kepler's joule counters through rate()).",
    )
    pdu_power: str = Field(
        default="sum(pdu_power_watts{$selector})",
        max_length=4096,
        description="Power measured at the PDUs in watts.",
    )
    pod_power: str = Field(
        default="sum by (namespace, pod) (DCGM_FI_DEV_POWER_USAGE{$selector})",
        max_length=4096,
        description=(
            "Power per pod in watts, one series per (namespace, pod); used to learn each workload's watts per "
            "replica. Empty disables it (annotations and GPU counts are used instead)."
        ),
    )

    @model_validator(mode="after")
    def _scoped(self) -> TelemetryQueries:
        for field, alias in (("gpu_power", "gpuPower"), ("node_power", "nodePower"), ("pdu_power", "pduPower"),
                             ("pod_power", "podPower")):
            query = getattr(self, field)
            if "$selector" not in query and not (field == "pod_power" and query == ""):
                raise ValueError(f"{alias} must contain $selector (the governed nodes' label matcher), got {query!r}")
        return self


class SecretRef(ApiModel):
    """A Secret the operator may read, by namespace and name (a PowerPolicy's Prometheus
    credentials, an EnergyStorage's Modbus TLS certificate)."""

    namespace: str = Field(min_length=1, max_length=63, pattern=_NAME_PATTERN, description="Namespace of the Secret.")
    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")


class HttpHeader(ApiModel):
    """One extra HTTP header on Prometheus queries."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.name.lowerAscii() != 'authorization'",
            "the Authorization header comes from secretRef (a token or username and password)", ".name"),
    ]})

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9-]+$",
                      description="Header name: letters, digits and '-'; not Authorization.")
    value: str = Field(max_length=1024, description="Header value.")

    @model_validator(mode="after")
    def _not_authorization(self) -> HttpHeader:
        if self.name.lower() == "authorization":
            raise ValueError("the Authorization header comes from secretRef (a token or username and password)")
        return self


class PrometheusAuth(ApiModel):
    """How to reach a secured Prometheus (or Thanos, Mimir, an OpenShift thanos-querier)."""

    secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret with any of: `ca.crt` (CA bundle the server certificate is verified against), `token` (bearer "
            "token), `username` and `password` (basic auth), `tls.crt` and `tls.key` (client certificate). Unset: "
            "the operator's own --prometheus-ca-file and --prometheus-token-file, if any."
        ),
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Do not verify the server's TLS certificate (verification is on by default)."
    )
    headers: list[HttpHeader] = Field(
        default_factory=list, max_length=16,
        description="Extra HTTP headers on every query, e.g. X-Scope-OrgID for a Mimir or Cortex tenant "
                    "(as a probe's httpHeaders).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _unique_headers(self) -> PrometheusAuth:
        names = [h.name for h in self.headers]
        if len(set(names)) < len(names):
            raise ValueError(f"headers: each name once, got {names}")
        return self


class Telemetry(ApiModel):
    """Where and how power is measured."""

    prometheus_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Base URL of the Prometheus HTTP API. Unset uses the operator's --prometheus-url.",
    )
    auth: PrometheusAuth = Field(default_factory=PrometheusAuth, description="TLS and credentials for Prometheus.")
    source: Literal["dcgm", "kepler", "pdu"] = Field(
        default="dcgm", description="Which query in `queries` measures the governed power."
    )
    queries: TelemetryQueries = Field(default_factory=TelemetryQueries, description="PromQL per signal.")
    node_label: str = Field(
        default="Hostname",
        min_length=1,
        max_length=128,
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description=(
            "Series label that holds the node name; `$selector` in a query becomes a matcher on it for the "
            "nodes in spec.scope (DCGM exporter: Hostname; Kepler: instance or node_name)."
        ),
    )
    step_seconds: float = Field(
        default=1.0, ge=0.1, le=3600, description="Resolution the series are resampled to, in seconds."
    )
    stale_after_seconds: int = Field(
        default=60,
        ge=1,
        le=86400,
        description="A series whose newest sample is older than this is stale: the policy holds its state.",
    )
    min_coverage_fraction: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description=(
            "Share of the governed nodes (with GPUs, for dcgm) that must report power each period. Below it the "
            "policy is Degraded (TelemetryIncomplete, the silent nodes named) and holds; above it, a silent node "
            "counts at its last reported power (its GPUs at workloads.wattsPerGpu if it never reported), never 0. "
            "Checked when the source's query starts with sum(...)."
        ),
    )


class ConfigMapRef(ApiModel):
    """A ConfigMap holding a forecaster model directory (ONNX file and metadata)."""

    namespace: str = Field(
        min_length=1, max_length=63, pattern=_NAME_PATTERN, description="Namespace of the ConfigMap."
    )
    name: str = Field(min_length=1, max_length=253, description="Name of the ConfigMap.")


class Forecast(ApiModel):
    """How far ahead and how cautiously to forecast."""

    model_config_map: ConfigMapRef | None = Field(
        default=None, description="Model to use instead of the bundled default student."
    )
    horizon_seconds: int = Field(
        default=30, ge=1, le=3600, description="How far ahead the planner looks, in seconds."
    )
    confidence: float = Field(
        default=0.9,
        ge=0.5,
        le=0.999,
        description="Nominal coverage of the forecast's upper bound that is compared with the budget. 0.5 plans "
                    "against the median: the fewest battery cycles, enough when the ladder is the battery alone "
                    "(it reacts within a period); higher levels act earlier on more false alarms.",
    )
    workload_confidence: float | None = Field(
        default=None,
        ge=0.5,
        le=0.999,
        description="Forecast level the workload rungs (scaleDown, suspend) plan against; the battery plans against "
                    "confidence. Unset: 0.5 (the median) when the ladder has a battery, which answers within its "
                    "response time and covers the rest of the bound, so replicas and jobs are not shed on every "
                    "upper-bound false alarm; otherwise confidence.",
    )
    max_error_fraction: float = Field(
        default=0.25,
        gt=0,
        le=10,
        description=(
            "When the recent mean absolute forecast error exceeds this fraction of observed power, "
            "the policy falls back to reactive control and says so."
        ),
    )


class Storage(ApiModel):
    """The battery (ESS) behind the governed nodes, the first rung of the ladder."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("!has(self.chargeTargetFraction) || self.chargeTargetFraction > "
                    "(has(self.reserveFraction) ? self.reserveFraction : 0.2)",
                    "chargeTargetFraction must be above reserveFraction", ".chargeTargetFraction")
            ]
        }
    )

    energy_storage_ref: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the EnergyStorage resource that drives the battery.",
    )
    reserve_fraction: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="State of charge never discharged below, as a fraction of capacity (below 1).",
    )
    max_discharge_watts: float | None = Field(
        default=None, gt=0, description="Upper limit on discharge power; unset uses the device's rating."
    )
    max_charge_watts: float | None = Field(
        default=None, gt=0, description="Upper limit on charge power; unset uses the device's rating."
    )
    recharge: bool = Field(
        default=True,
        description="Recharge off-peak (spec.tariff) into forecast headroom below the restore threshold.",
    )
    charge_target_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "State of charge to hold ready for the next peak. Unset: the reserve plus the energy of the largest "
            "peak above the trigger in the last day, with 25% margin, over capacity x state of health (full "
            "until a peak has been seen)."
        ),
    )
    min_dwell_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="No charging this long after a discharge (a forecast peak may always stop a charge and "
                    "discharge at once).",
    )
    endurance_seconds: int = Field(
        default=7200,
        ge=0,
        le=86400,
        description="How long the energy above the reserve should last at the battery's mean discharge of the last "
                    "30 minutes. While it would run out sooner, the battery stops spending on unlikely spikes: its "
                    "upper bound may rise from the trigger toward capWatts in proportion (all the way with no energy "
                    "left), the median forecast always stays under the trigger, and the workload rungs take over "
                    "what it discharges beyond what its energy sustains for enduranceSeconds, so the battery lasts "
                    "through a long peak instead of reaching the reserve halfway. 0 turns pacing off.",
    )

    @model_validator(mode="after")
    def _target_above_reserve(self) -> Storage:
        if self.charge_target_fraction is not None and self.charge_target_fraction <= self.reserve_fraction:
            raise ValueError(f"chargeTargetFraction {self.charge_target_fraction} must be above reserveFraction "
                             f"{self.reserve_fraction}")
        return self


Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
EVERY_DAY: tuple[Day, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class PeakWindow(ApiModel):
    """An on-peak period of the tariff, in the tariff's time zone."""

    start: str = Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$", description="Start, HH:MM[:SS] (inclusive)."
    )
    end: str = Field(
        pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?|24:00)$",
        description="End, HH:MM[:SS] (exclusive); before start wraps past midnight.",
    )
    days: list[Day] = Field(
        default_factory=lambda: list(EVERY_DAY),
        min_length=1,
        max_length=7,
        description="Days the window starts on.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class Tariff(ApiModel):
    """When energy is expensive: the battery recharges only outside the peak windows."""

    time_zone: str = Field(
        default="UTC", min_length=1, max_length=64, description="IANA time zone of the windows, e.g. Europe/Berlin."
    )
    peak_windows: list[PeakWindow] = Field(
        default_factory=list, max_length=16, description="On-peak periods; none means every hour is off-peak."
    )

    @model_validator(mode="after")
    def _known_zone(self) -> Tariff:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timeZone: unknown time zone {self.time_zone!r}") from exc
        return self


class Checkpoint(ApiModel):
    """The checkpoint handshake before a batch Job is suspended."""

    deadline_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How long to wait for gridshift.io/checkpoint-completed after asking for a checkpoint.",
    )
    on_timeout: Literal["suspend", "skip"] = Field(
        default="suspend",
        description="At the deadline without a confirmed checkpoint: suspend anyway, or leave the Job running.",
    )


class Workloads(ApiModel):
    """Which workloads the policy may act on, and in what order."""

    namespace_selector: LabelSelector = Field(
        default_factory=LabelSelector, description="Namespaces whose workloads may be acted on; empty selects all."
    )
    selector: LabelSelector = Field(
        default_factory=LabelSelector, description="Workloads (Deployments, StatefulSets, Jobs) that may be acted on."
    )
    ladder: list[Rung] = Field(
        default=DEFAULT_LADDER,
        min_length=1,
        max_length=4,
        description=(
            "Response ladder, cheapest first: battery, scaleDown, suspend, migrate. Each rung at most once. "
            "Restore runs it backwards. The battery rung is skipped (and reported) when spec.storage is unset. "
            "migrate needs spec.migration.enabled; moves follow renewable surplus every period, peak or not."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    watts_per_gpu: float = Field(
        default=700,
        gt=0,
        le=100000,
        description=(
            "Power assumed per requested GPU when a workload's own power is not yet measured; with the dcgm "
            "source also the most a GPU is assumed to draw, so no forecast exceeds governed GPUs x wattsPerGpu."
        ),
    )
    checkpoint: Checkpoint = Field(default_factory=Checkpoint, description="Checkpoint handshake for Jobs.")

    @model_validator(mode="after")
    def _unique_rungs(self) -> Workloads:
        seen: set[str] = set()
        for rung in self.ladder:
            if rung in seen:
                raise ValueError(f"ladder lists {rung!r} twice")
            seen.add(rung)
        return self


class Site(ApiModel):
    """A node pool of this cluster that jobs can move to (and from) to follow renewable surplus."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.nodeSelector) && ((has(self.nodeSelector.matchLabels) && "
                    "size(self.nodeSelector.matchLabels) > 0) || (has(self.nodeSelector.matchExpressions) && "
                    "size(self.nodeSelector.matchExpressions) > 0))",
                    "a site needs a non-empty nodeSelector",
                    ".nodeSelector",
                )
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63, pattern=_NAME_PATTERN, description="Unique site name.")
    node_selector: LabelSelector = Field(
        default_factory=LabelSelector,
        description="Nodes of this cluster that form the site (not empty). A move points a Job's pods at them.",
    )
    bandwidth_bits_per_second: float = Field(
        gt=0, le=1e13, description="WAN bandwidth from the other sites to this one, in bits per second."
    )
    renewable_query: str | None = Field(
        default=None,
        max_length=4096,
        description=(
            "PromQL for the site's renewable supply in watts (one series). Its surplus is this supply less the "
            "site's measured load (the policy's power query over the site's nodes). A site without a query has "
            "no surplus: jobs leave it for greener sites but never move to it."
        ),
    )
    budget_watts: float | None = Field(
        default=None,
        gt=0,
        le=1e10,
        description="The site's own power cap: a move there must leave the site's load plus the job's power under it.",
    )

    @model_validator(mode="after")
    def _has_nodes(self) -> Site:
        if not (self.node_selector.match_labels or self.node_selector.match_expressions):
            raise ValueError("nodeSelector: a site needs a non-empty nodeSelector")
        return self


class Migration(ApiModel):
    """Following renewable surplus: checkpointed Jobs move to the site whose renewable supply covers
    them, when the feasibility model says the move finishes inside the site's window."""

    enabled: bool = Field(
        default=False,
        description=(
            "Move Jobs labelled gridshift.io/migratable=true with a declared gridshift.io/checkpoint-bytes "
            "between spec.migration.sites, one move started per period."
        ),
    )
    margin_fraction: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="A move must finish within (1 - margin) of the remaining renewable window.",
    )
    step_seconds: int = Field(
        default=3600,
        ge=10,
        le=86400,
        description=(
            "Resolution at which renewable windows are judged. A window open now is forecast to last at least "
            "one step, or as long as the same window lasted from this time yesterday (read from Prometheus); "
            "a Job that moved stays at least one step."
        ),
    )
    sites: list[Site] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "The sites Jobs move between, inside spec.scope (only Jobs on governed nodes are moved); a Job "
            "running outside every site's nodes is left where it is."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _unique_sites(self) -> Migration:
        names = [s.name for s in self.sites]
        if len(names) != len(set(names)):
            raise ValueError("sites must have unique names")
        return self


class Safety(ApiModel):
    """Limits that keep the operator from doing harm."""

    dry_run: bool = Field(
        default=True,
        description="Compute, report and count actions without changing anything. New policies start in dry-run.",
    )
    period_seconds: int = Field(default=15, ge=1, le=3600, description="Control period in seconds.")
    cooldown_seconds: int = Field(
        default=60, ge=0, le=86400, description="Minimum time between two actions on the same object."
    )
    max_actions_per_period: int = Field(
        default=3, ge=1, le=100, description="At most this many actions in one control period."
    )
    restore_ramp_watts_per_minute: float | None = Field(
        default=None,
        gt=0,
        description="How fast restored load may rise, in watts per minute. Unset means 10% of capWatts per minute.",
    )
    hysteresis_fraction: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="Restore starts only when forecast power is below trigger x (1 - hysteresisFraction).",
    )


class PowerPolicySpec(ApiModel):
    """Desired behaviour of a PowerPolicy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!('migrate' in self.workloads.ladder) || "
                    "(has(self.migration) && self.migration.enabled && size(self.migration.sites) > 0)",
                    "the migrate rung in the ladder needs migration.enabled and at least one site",
                    ".workloads.ladder",
                ),
            ]
        }
    )

    scope: Scope = Field(default_factory=Scope, description="Which nodes' power the policy governs.")
    budget: Budget = Field(description="Power cap and trigger level.")
    telemetry: Telemetry = Field(default_factory=Telemetry, description="Where power is measured.")
    forecast: Forecast = Field(default_factory=Forecast, description="Forecast horizon and confidence.")
    storage: Storage | None = Field(default=None, description="The battery, if the site has one.")
    tariff: Tariff = Field(default_factory=Tariff, description="Peak and off-peak hours for recharging.")
    workloads: Workloads = Field(default_factory=Workloads, description="Workloads the policy may act on.")
    migration: Migration = Field(default_factory=Migration, description="Moves to renewable sites.")
    safety: Safety = Field(default_factory=Safety, description="Dry-run, cooldown, rate and ramp limits.")

    @model_validator(mode="after")
    def _ladder_needs(self) -> PowerPolicySpec:
        ladder = self.workloads.ladder
        if "migrate" in ladder and not (self.migration.enabled and self.migration.sites):
            raise ValueError("the migrate rung in the ladder needs migration.enabled and at least one site")
        return self


class Condition(ApiModel):
    """A status condition, as in Kubernetes' `metav1.Condition`."""

    type: str = Field(max_length=316, description="Ready, Degraded, ForecastHealthy or Acting.")
    status: Literal["True", "False", "Unknown"] = Field(description="Whether the condition holds.")
    reason: str = Field(max_length=1024, description="One CamelCase word for machines.")
    message: str = Field(default="", max_length=32768, description="What a person needs to know.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, ge=0, description="Spec generation this reflects.")


class ActionRecord(ApiModel):
    """One action taken (or, in dry-run, that would have been taken)."""

    time: str = Field(description="When the action was decided (RFC 3339).")
    rung: Rung = Field(description="Ladder rung of the action.")
    verb: Literal["discharge", "charge", "idle", "scaleDown", "scaleUp", "checkpoint", "suspend", "resume", "migrate"]
    target: str = Field(max_length=512, description="kind/namespace/name of the object acted on.")
    expected_watts: float = Field(description="Power the action was expected to shave (negative when restoring).")
    measured_watts: float | None = Field(default=None, description="Power change measured afterwards, if known.")
    dry_run: bool = Field(default=False, description="True when the action was only reported.")
    outcome: Literal["Intended", "Applied", "Reported", "Interrupted"] | None = Field(
        default=None,
        description="Intended: recorded before it was applied (the record is written first, so a crash loses "
                    "none); Applied or, in dry-run, Reported afterwards; Interrupted: the operator stopped between "
                    "the two, and the object's gridshift.io annotations say what was changed.",
    )


class SiteStatus(ApiModel):
    """One migration site as the operator last read it."""

    name: str = Field(max_length=63, description="The site's name in spec.migration.sites.")
    nodes: int = Field(ge=0, description="Nodes matching the site's selector.")
    renewable_watts: float | None = Field(default=None, description="Latest renewable supply; unset when unread.")
    load_watts: float | None = Field(default=None, description="Latest measured power of the site's nodes.")
    surplus_watts: float | None = Field(
        default=None, description="Renewable supply less load (capped by the site's budget); unset when unknown."
    )
    window_seconds: float | None = Field(
        default=None, ge=0, description="Forecast time the current surplus lasts; 0 when there is none."
    )
    message: str = Field(default="", max_length=1024, description="Why a value is missing, if one is.")


class MigrationStatus(ApiModel):
    """The latest migration decision for one migratable Job."""

    job: str = Field(max_length=512, description="Job/namespace/name.")
    site: str | None = Field(default=None, max_length=63, description="The site it runs on now, if any.")
    destination: str | None = Field(default=None, max_length=63, description="The site judged or moved to.")
    phase: Literal["Stays", "WouldMove", "Checkpointing", "Suspending", "Resuming", "Moved", "RolledBack"] = Field(
        description="Stays (not moving; see reason), WouldMove (dry-run), or the step of its move."
    )
    binding: Literal["time", "energy"] | None = Field(
        default=None, description="The feasibility constraint with the least slack, when a move was judged."
    )
    reason: str = Field(max_length=1024, description="The decision with its numbers.")
    time: str = Field(description="When it was decided (RFC 3339).")


class PowerPolicyStatus(ApiModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = Field(default=None, ge=0, description="Last spec generation acted on.")
    phase: Literal["Pending", "Watching", "Acting", "Restoring", "Paused", "Degraded"] | None = Field(
        default=None, description="One-word summary for `kubectl get`; Paused while the policy carries the "
                                  "gridshift.io/paused annotation (it plans and reports, and changes nothing)."
    )
    observed_watts: int | None = Field(
        default=None, description="Latest measured power of the governed nodes, in whole watts."
    )
    forecast_peak_watts: int | None = Field(
        default=None, description="Forecast upper bound over the horizon, in whole watts."
    )
    peak_risk: float | None = Field(
        default=None, ge=0, le=1, description="Probability that power crosses the cap within the horizon."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, Degraded, ForecastHealthy and Acting.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    recent_actions: list[ActionRecord] = Field(
        default_factory=list, max_length=50, description="The latest actions, newest last."
    )
    control_mode: Literal["predictive", "reactive"] | None = Field(
        default=None,
        description="predictive: acts on the forecast; reactive: acts on measured power (forecast unhealthy).",
    )
    forecast_error_fraction: float | None = Field(
        default=None, ge=0, description="Recent mean absolute forecast error over mean observed power."
    )
    forecast_coverage: float | None = Field(
        default=None, ge=0, le=1,
        description="Share of the recent forecast upper bounds that the measured power stayed under; the operator "
                    "moves the bound online so that this tends to spec.forecast.confidence.",
    )
    last_change_time: str | None = Field(
        default=None, description="When the policy last changed anything (RFC 3339); the restore ramp counts from it."
    )
    last_period_time: str | None = Field(
        default=None, description="When the operator last ran a control period for this policy (RFC 3339), whatever "
                                  "its outcome: a value that stops moving means the policy is not being controlled."
    )
    uncovered_watts: float | None = Field(
        default=None, ge=0, description="Part of the forecast shortfall the ladder could not cover."
    )
    charge_target_fraction: float | None = Field(
        default=None, ge=0, le=1, description="State of charge the battery is being kept at for the next peak."
    )
    tariff_period: Literal["Peak", "OffPeak"] | None = Field(
        default=None, description="Where spec.tariff stood at the last period; the battery recharges only OffPeak."
    )
    battery_endurance_seconds: float | None = Field(
        default=None, ge=0, description="How long the battery's energy above the reserve lasts at its mean discharge "
                                        "of the last 30 minutes; unset while it has not been discharging. Below "
                                        "spec.storage.enduranceSeconds the battery paces itself."
    )
    sites: list[SiteStatus] = Field(
        default_factory=list, max_length=32, description="Renewable supply, load, surplus and window per site."
    )
    migrations: list[MigrationStatus] = Field(
        default_factory=list, max_length=50, description="The latest migration decision per migratable Job."
    )


class PowerPolicy(BaseModel):
    """Keeps the power of a set of GPU nodes under a cap by acting before forecast peaks."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)

    api_version: Literal["gridshift.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["PowerPolicy"]
    metadata: dict[str, Any] = Field(description="Standard object metadata.")
    spec: PowerPolicySpec
    status: PowerPolicyStatus | None = None
