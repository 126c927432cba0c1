"""Batteries the operator drives itself (EnergyStorage ``driver: modbus``): every poll it reads
the device, writes ``spec.setpointWatts`` to it through the safe SunSpec driver (revert timeout,
heartbeat, reserve and ratings) and reports what it read back in the resource's status."""

from __future__ import annotations

import base64
import contextlib
import ssl
import time
from typing import Any

from kubernetes import client

from gridshift.actuators.modbus import BatteryReading, CommandResult, DeviceError, ModbusBattery, tls_context
from gridshift.api.energystorage import EnergyStorageSpec
from gridshift.api.times import rfc3339
from gridshift.operator.events import Event
from gridshift.operator.status import condition


class InvalidCredentials(DeviceError):
    reason = "InvalidCredentials"


class ModbusStorageController:
    """One connection per EnergyStorage, reopened when its endpoint changes or after a failure."""

    def __init__(self, api: client.ApiClient):
        self.core = client.CoreV1Api(api)
        self.devices: dict[str, tuple[tuple[Any, ...], ModbusBattery]] = {}
        self.reasons: dict[str, str] = {}

    def _tls(self, spec: EnergyStorageSpec) -> ssl.SSLContext | None:
        assert spec.modbus is not None
        ref = spec.modbus.tls_secret_ref
        if ref is None:
            return None
        where = f"Secret {ref.namespace}/{ref.name} (spec.modbus.tlsSecretRef)"
        try:
            data = self.core.read_namespaced_secret(ref.name, ref.namespace).data or {}
        except client.ApiException as exc:
            raise InvalidCredentials(f"{where}: {exc.status} {exc.reason}") from exc
        missing = [k for k in ("ca.crt", "tls.crt", "tls.key") if k not in data]
        if missing:
            raise InvalidCredentials(f"{where} has no {', '.join(missing)}")
        pem = {k: base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")}
        try:
            return tls_context(pem["ca.crt"], pem["tls.crt"], pem["tls.key"])
        except (ssl.SSLError, ValueError) as exc:
            raise InvalidCredentials(f"{where}: ca.crt, tls.crt or tls.key is not usable PEM: {exc}") from exc

    def _device(self, name: str, spec: EnergyStorageSpec) -> ModbusBattery:
        assert spec.modbus is not None
        m = spec.modbus
        key = (m.host, m.port, m.unit_id, m.tls_secret_ref)
        current = self.devices.get(name)
        if current is not None and current[0] != key:
            self.drop(name)
            current = None
        if current is None:
            current = self.devices[name] = (key, ModbusBattery(m.host, m.port, m.unit_id, tls=self._tls(spec)))
        return current[1]

    def drop(self, name: str) -> None:
        entry = self.devices.pop(name, None)
        if entry is not None:
            entry[1].close()

    def run_once(self, name: str, spec: EnergyStorageSpec, status: dict[str, Any] | None,
                 generation: int | None = None, now: float | None = None) -> tuple[dict[str, Any], list[Event]]:
        """One poll: the new status and the Events to post (only on a change of state)."""
        assert spec.modbus is not None
        now = time.time() if now is None else now
        prev = (status or {}).get("conditions", [])
        events: list[Event] = []
        try:
            device = self._device(name, spec)
            result: CommandResult = device.command(
                spec.setpoint_watts, revert_s=spec.modbus.revert_seconds, reserve_fraction=spec.reserve_fraction,
                max_discharge_w=spec.max_discharge_watts, max_charge_w=spec.max_charge_watts)
            reading: BatteryReading = device.read()
        except DeviceError as exc:
            self.drop(name)
            if self.reasons.get(name) != exc.reason:
                events.append(Event("Warning", exc.reason, str(exc)))
            self.reasons[name] = exc.reason
            return {"conditions": [condition(prev, "Ready", "False", exc.reason, str(exc), now, generation)]}, events
        if self.reasons.pop(name, "") != "Connected":
            events.append(Event("Normal", "Connected", f"{reading.device} at {device.endpoint}"))
        self.reasons[name] = "Connected"
        last = (status or {}).get("lastCommand") or {}
        if result.limited_by and not last.get("limitedBy"):  # when a limit starts, not at every SoC step
            events.append(Event("Normal", "SetpointLimited", result.message))
        message = (f"{reading.device} at {device.endpoint}: {reading.charge_state}, "
                   f"{reading.power_w:.0f} W, revert after {spec.modbus.revert_seconds} s")
        return {
            "socFraction": round(reading.soc_fraction, 6), "sohFraction": round(reading.soh_fraction, 6),
            "powerWatts": reading.power_w, "chargeState": reading.charge_state, "device": reading.device,
            "lastUpdateTime": rfc3339(now),
            "lastCommand": {"requestedWatts": result.requested_w, "commandedWatts": round(result.commanded_w, 1),
                            "limitedBy": result.limited_by, "time": rfc3339(now)},
            "conditions": [condition(prev, "Ready", "True", "Connected", message, now, generation)],
        }, events

    def release(self, name: str) -> None:
        """Idle the device and close the connection (the revert timeout covers a failure here)."""
        entry = self.devices.get(name)
        if entry is not None:
            with contextlib.suppress(DeviceError):
                entry[1].idle()
        self.drop(name)
