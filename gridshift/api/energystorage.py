"""API types of the ``EnergyStorage`` resource (``gridshift.io/v1alpha1``, cluster-scoped).

An EnergyStorage is one site battery (ESS). gridshift writes the setpoint into
``spec.setpointWatts``. With ``driver: kubernetes`` a site controller applies it and reports
state of charge in ``status``; with ``driver: modbus`` the operator itself drives the battery over
Modbus TCP (SunSpec models 802 and 124) and writes what it reads back from the device into
``status``. ``gridshift crd`` renders the CRD from these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridshift.api.powerpolicy import ApiModel, Condition, SecretRef, cel

KIND = "EnergyStorage"
PLURAL = "energystorages"


class Modbus(ApiModel):
    """Where the battery's SunSpec Modbus TCP server is."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.pollSeconds * 2.0 <= double(self.revertSeconds)",
                    "pollSeconds must be at most half of revertSeconds, so one late poll does not revert",
                    ".pollSeconds"),
            ]
        }
    )

    host: str = Field(min_length=1, max_length=253, description="Host name or IP address of the device.")
    port: int = Field(default=502, ge=1, le=65535, description="TCP port.")
    unit_id: int = Field(default=1, ge=0, le=255, description="Modbus unit (device) id.")
    revert_seconds: int = Field(
        default=60,
        ge=5,
        le=3600,
        description=(
            "Every rate is written with this revert timeout: if the operator stops refreshing it (it does so "
            "every pollSeconds), the battery returns to idle by itself."
        ),
    )
    poll_seconds: float = Field(
        default=5, ge=0.5, le=600, description="How often the device is read, the setpoint refreshed and the "
                                               "controller heartbeat advanced."
    )
    tls_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Modbus/TCP Security (TLS, usually port 802): a Secret with `ca.crt` (the CA the device's certificate "
            "must chain to), `tls.crt` and `tls.key` (the operator's client certificate, whose role the device "
            "authorizes). Read when connecting; a rotated Secret is used from the next reconnect."
        ),
    )

    @model_validator(mode="after")
    def _poll_within_revert(self) -> Modbus:
        if self.poll_seconds * 2 > self.revert_seconds:
            raise ValueError("pollSeconds must be at most half of revertSeconds, so one late poll does not revert")
        return self


class EnergyStorageSpec(ApiModel):
    """The battery's ratings and the setpoint gridshift asks for."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.driver != 'modbus' || has(self.modbus)", "driver modbus needs spec.modbus", ".modbus"),
                cel("self.setpointWatts <= self.maxDischargeWatts",
                    "setpointWatts must not exceed maxDischargeWatts", ".setpointWatts"),
                cel("-self.setpointWatts <= self.maxChargeWatts",
                    "charging (negative setpointWatts) must not exceed maxChargeWatts", ".setpointWatts"),
            ]
        }
    )

    driver: Literal["kubernetes", "modbus"] = Field(
        default="kubernetes",
        description="How the setpoint reaches the battery: `kubernetes` leaves it in this resource for a site "
                    "controller to apply; `modbus` has the operator drive the device over Modbus TCP (SunSpec).",
    )
    modbus: Modbus | None = Field(default=None, description="The device, for driver modbus.")
    capacity_watt_hours: float = Field(gt=0, le=1e10, description="Usable energy capacity in watt-hours.")
    max_discharge_watts: float = Field(gt=0, le=1e10, description="Rated discharge power in watts.")
    max_charge_watts: float = Field(gt=0, le=1e10, description="Rated charge power in watts.")
    reserve_fraction: float = Field(
        default=0.0, ge=0, lt=1,
        description="Driver modbus never discharges below this state of charge (nor below the device's SoCRsvMin).",
    )
    setpoint_watts: float = Field(
        default=0.0, ge=-1e10, le=1e10,
        description="Requested power: positive discharges into the site, negative charges, 0 idles.",
    )

    @model_validator(mode="after")
    def _driver_needs(self) -> EnergyStorageSpec:
        if self.driver == "modbus" and self.modbus is None:
            raise ValueError("driver modbus needs spec.modbus")
        return self

    @model_validator(mode="after")
    def _setpoint_within_ratings(self) -> EnergyStorageSpec:  # the CEL rules above, for the operator's reads
        if self.setpoint_watts > self.max_discharge_watts:
            raise ValueError("setpointWatts must not exceed maxDischargeWatts")
        if -self.setpoint_watts > self.max_charge_watts:
            raise ValueError("charging (negative setpointWatts) must not exceed maxChargeWatts")
        return self


class LastCommand(ApiModel):
    """What the operator last wrote to the device, and why it was less than asked if it was."""

    requested_watts: float = Field(description="spec.setpointWatts at the time.")
    commanded_watts: float = Field(description="The rate written; + discharges.")
    limited_by: str | None = Field(default=None, max_length=512, description="Why it is below the request.")
    time: str = Field(description="When (RFC 3339).")


class EnergyStorageStatus(ApiModel):
    """What the battery controller reports."""

    soc_fraction: float | None = Field(default=None, ge=0, le=1, description="State of charge, 0 to 1.")
    soh_fraction: float | None = Field(default=None, ge=0, le=1, description="State of health, 0 to 1.")
    power_watts: float | None = Field(default=None, description="Measured power; positive discharges.")
    last_update_time: str | None = Field(default=None, description="When the controller last reported (RFC 3339).")
    charge_state: str | None = Field(default=None, max_length=32, description="As the device reports it: "
                                     "charging, discharging, holding, full, empty, off.")
    device: str | None = Field(default=None, max_length=256, description="Maker, model and serial number.")
    last_command: LastCommand | None = Field(default=None, description="The last rate written to the device.")
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16, description="Ready and similar.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class EnergyStorage(BaseModel):
    """A site battery whose discharge setpoint gridshift controls."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)

    api_version: Literal["gridshift.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["EnergyStorage"]
    metadata: dict[str, Any] = Field(description="Standard object metadata.")
    spec: EnergyStorageSpec
    status: EnergyStorageStatus | None = None
