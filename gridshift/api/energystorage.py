"""API types of the ``EnergyStorage`` resource (``gridshift.io/v1alpha1``, cluster-scoped).

An EnergyStorage is one site battery (ESS). gridshift writes the discharge setpoint into
``spec.setpointWatts``; the site's battery controller (``driver: kubernetes``) applies it and
reports state of charge in ``status``. ``gridshift crd`` renders the CRD from these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gridshift.api.powerpolicy import ApiModel, Condition, cel

KIND = "EnergyStorage"
PLURAL = "energystorages"


class EnergyStorageSpec(ApiModel):
    """The battery's ratings and the setpoint gridshift asks for."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.setpointWatts <= self.maxDischargeWatts",
                    "setpointWatts must not exceed maxDischargeWatts", ".setpointWatts"),
                cel("-self.setpointWatts <= self.maxChargeWatts",
                    "charging (negative setpointWatts) must not exceed maxChargeWatts", ".setpointWatts"),
            ]
        }
    )

    driver: Literal["kubernetes"] = Field(
        default="kubernetes",
        description="How the setpoint reaches the battery: `kubernetes` leaves it in this resource for a site "
                    "controller to apply.",
    )
    capacity_watt_hours: float = Field(gt=0, le=1e10, description="Usable energy capacity in watt-hours.")
    max_discharge_watts: float = Field(gt=0, le=1e10, description="Rated discharge power in watts.")
    max_charge_watts: float = Field(gt=0, le=1e10, description="Rated charge power in watts.")
    setpoint_watts: float = Field(
        default=0.0, ge=-1e10, le=1e10,
        description="Requested power: positive discharges into the site, negative charges, 0 idles.",
    )


class EnergyStorageStatus(ApiModel):
    """What the battery controller reports."""

    soc_fraction: float | None = Field(default=None, ge=0, le=1, description="State of charge, 0 to 1.")
    soh_fraction: float | None = Field(default=None, ge=0, le=1, description="State of health, 0 to 1.")
    power_watts: float | None = Field(default=None, description="Measured power; positive discharges.")
    last_update_time: str | None = Field(default=None, description="When the controller last reported (RFC 3339).")
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16, description="Ready and similar.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class EnergyStorage(BaseModel):
    """A site battery whose discharge setpoint gridshift controls."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)

    api_version: Literal["gridshift.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["EnergyStorage"]
    metadata: dict = Field(description="Standard object metadata.")
    spec: EnergyStorageSpec
    status: EnergyStorageStatus | None = None
