"""Batteries the operator drives itself (EnergyStorage ``driver: modbus``): every poll it reads
the device, writes ``spec.setpointWatts`` to it through the safe SunSpec driver (revert timeout,
heartbeat, reserve and ratings) and reports what it read back in the resource's status."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from gridshift.actuators.kubernetes import rfc3339
from gridshift.actuators.modbus import BatteryReading, CommandResult, DeviceError, ModbusBattery
from gridshift.api.energystorage import EnergyStorageSpec
from gridshift.operator.control import Event, _condition


class ModbusStorageController:
    """One connection per EnergyStorage, reopened when its endpoint changes or after a failure."""

    def __init__(self) -> None:
        self.devices: dict[str, ModbusBattery] = {}
        self.reasons: dict[str, str] = {}

    def _device(self, name: str, spec: EnergyStorageSpec) -> ModbusBattery:
        assert spec.modbus is not None
        m = spec.modbus
        current = self.devices.get(name)
        if current is not None and (current.host, current.port, current.unit_id) != (m.host, m.port, m.unit_id):
            self.drop(name)
            current = None
        if current is None:
            current = self.devices[name] = ModbusBattery(m.host, m.port, m.unit_id)
        return current

    def drop(self, name: str) -> None:
        device = self.devices.pop(name, None)
        if device is not None:
            device.close()

    def run_once(self, name: str, spec: EnergyStorageSpec, status: dict[str, Any] | None,
                 generation: int | None = None, now: float | None = None) -> tuple[dict[str, Any], list[Event]]:
        """One poll: the new status and the Events to post (only on a change of state)."""
        assert spec.modbus is not None
        now = time.time() if now is None else now
        prev = (status or {}).get("conditions", [])
        events: list[Event] = []
        device = self._device(name, spec)
        try:
            result: CommandResult = device.command(
                spec.setpoint_watts, revert_s=spec.modbus.revert_seconds, reserve_fraction=spec.reserve_fraction,
                max_discharge_w=spec.max_discharge_watts, max_charge_w=spec.max_charge_watts)
            reading: BatteryReading = device.read()
        except DeviceError as exc:
            self.drop(name)
            if self.reasons.get(name) != exc.reason:
                events.append(Event("Warning", exc.reason, str(exc)))
            self.reasons[name] = exc.reason
            return {"conditions": [_condition(prev, "Ready", "False", exc.reason, str(exc), now, generation)]}, events
        if self.reasons.pop(name, "") != "Connected":
            events.append(Event("Normal", "Connected", f"{reading.device} at {device.endpoint}"))
        self.reasons[name] = "Connected"
        last = (status or {}).get("lastCommand") or {}
        if result.limited_by and last.get("limitedBy") != result.limited_by:
            events.append(Event("Normal", "SetpointLimited", result.message))
        message = (f"{reading.device} at {device.endpoint}: {reading.charge_state}, "
                   f"{reading.power_w:.0f} W, revert after {spec.modbus.revert_seconds} s")
        return {
            "socFraction": round(reading.soc_fraction, 6), "sohFraction": round(reading.soh_fraction, 6),
            "powerWatts": reading.power_w, "chargeState": reading.charge_state, "device": reading.device,
            "lastUpdateTime": rfc3339(now),
            "lastCommand": {"requestedWatts": result.requested_w, "commandedWatts": round(result.commanded_w, 1),
                            "limitedBy": result.limited_by, "time": rfc3339(now)},
            "conditions": [_condition(prev, "Ready", "True", "Connected", message, now, generation)],
        }, events

    def release(self, name: str) -> None:
        """Idle the device and close the connection (the revert timeout covers a failure here)."""
        device = self.devices.get(name)
        if device is not None:
            with contextlib.suppress(DeviceError):
                device.idle()
        self.drop(name)
