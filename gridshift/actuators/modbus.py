"""The Modbus TCP driver for SunSpec batteries: reads model 802 (battery) and writes model 124
(storage controls), safe by construction.

- Discovery walks the SunSpec model list from the ``SunS`` marker; a device without models 802 and
  124, or with ratings, scale factors or reserve limits that make no sense, is refused with a
  ``DeviceError`` naming the point.
- Every rate is written with a revert timeout (``InOutWRte_RvrtTms``) and the controller heartbeat
  (``CtrlHb``) advances on every call, so a battery whose operator dies returns to idle by itself.
- A command never exceeds the device's rated charge and discharge power (nor the limits given by
  the caller), and is sized so that, held for the whole revert time, it can neither take the state
  of charge below the reserve (the larger of the caller's and the device's ``SoCRsvMin``) nor above
  the device's ``SocRsvMax``. Usable energy is nameplate times state of health. Model 802 reports
  neither the conversion loss nor the exact state of charge, so a discharge is sized on an assumed
  leg efficiency on the low side (``ASSUMED_LEG_EFFICIENCY``: AC watt-hours delivered per stored
  watt-hour) and on a state of charge ``SOC_READ_MARGIN`` below the register's.
"""

from __future__ import annotations

import itertools
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pymodbus.client import ModbusTcpClient, ModbusTlsClient
from pymodbus.exceptions import ModbusException

from gridshift.ess import sunspec

MAX_REVERT_S = 0xFFFE


class DeviceError(RuntimeError):
    """The battery is not one gridshift drives safely (``reason`` says which way, for conditions)."""

    reason = "InvalidDevice"


class DeviceUnreachable(DeviceError):
    """No connection, or the device stopped answering."""

    reason = "DeviceUnreachable"


class ReadRefused(DeviceError, sunspec.AddressRefused):
    """The device answered a read with a Modbus exception."""


ASSUMED_LEG_EFFICIENCY = 0.9  # AC Wh out per stored Wh; real battery + PCS legs run about 0.95
SOC_READ_MARGIN = 0.001  # the SoC register rounds to 0.05 % at its usual scale of 10^-1 %


@dataclass(frozen=True)
class BatteryReading:
    """What the device reports, in engineering units; power is + when discharging."""

    soc_fraction: float
    soh_fraction: float
    power_w: float
    charge_state: str
    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    reserve_min_fraction: float
    reserve_max_fraction: float
    commanded_w: float
    revert_s: float
    device: str


@dataclass(frozen=True)
class CommandResult:
    requested_w: float
    commanded_w: float
    limited_by: str | None   # why the command is smaller than the request, or None

    @property
    def message(self) -> str:
        base = f"commanded {self.commanded_w:.0f} W"
        if self.limited_by:
            return f"{base} of the {self.requested_w:.0f} W requested: {self.limited_by}"
        return base


def tls_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """Modbus/TCP Security client context: trust only ``ca_pem`` (the device's certificate must chain
    to it; its host name is not checked, as pymodbus' client does not pass one), present
    ``cert_pem``/``key_pem`` as the client's identity."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    load_cert_chain(ctx, cert_pem, key_pem)
    return ctx


def load_cert_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """``ctx.load_cert_chain`` from PEM bytes (ssl reads files only: a private temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="gridshift-tls-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        ctx.load_cert_chain(cert, key)


class ModbusBattery:
    def __init__(self, host: str, port: int = 502, unit_id: int = 1, timeout_s: float = 3.0,
                 tls: ssl.SSLContext | None = None):
        self.host, self.port, self.unit_id = host, port, unit_id
        self.tls = tls is not None
        self.client: ModbusTcpClient = (
            ModbusTlsClient(host, port=port, sslctx=tls, timeout=timeout_s, retries=1) if tls is not None
            else ModbusTcpClient(host, port=port, timeout=timeout_s, retries=1))
        self.models: dict[int, int] = {}
        self.scale: dict[str, int] = {}
        self.wcha_max = 0.0  # model 124's WChaMax, the base of the percent rates (set by read)
        self.device = ""     # maker, model and serial from model 1 (set by connect)
        self._heartbeat = itertools.count(1)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port} unit {self.unit_id}{' (TLS)' if self.tls else ''}"

    # -- registers ----------------------------------------------------------------------------------------------------

    def _read(self, address: int, count: int) -> list[int]:
        try:
            response = self.client.read_holding_registers(address, count=count, device_id=self.unit_id)
        except ModbusException as exc:
            raise DeviceUnreachable(f"{self.endpoint}: reading {count} registers at {address}: {exc}") from exc
        if response.isError():
            raise ReadRefused(f"{self.endpoint}: reading {count} registers at {address}: {response}")
        return list(response.registers)

    def _write(self, model: sunspec.Model, point: str, values: Sequence[int]) -> None:
        address = self.models[model.id] + model.point(point).offset
        try:
            response = self.client.write_registers(address, list(values), device_id=self.unit_id)
        except ModbusException as exc:
            raise DeviceUnreachable(f"{self.endpoint}: writing {point}: {exc}") from exc
        if response.isError():
            raise DeviceError(f"{self.endpoint}: the device refused {point}={list(values)}: {response}")

    # -- discovery and validation -------------------------------------------------------------------------------------

    def connect(self) -> BatteryReading:
        """Connect, discover the models and check the device map; returns the first reading."""
        if not self.client.connect():  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
            raise DeviceUnreachable(f"{self.endpoint}: cannot connect")
        try:
            self.models = sunspec.walk(self._read)
        except sunspec.SunSpecError as exc:
            raise DeviceError(f"{self.endpoint}: {exc}") from exc
        for model_id, what in ((802, "battery"), (124, "storage controls")):
            if model_id not in self.models:
                raise DeviceError(f"{self.endpoint}: no SunSpec model {model_id} ({what}); found "
                                  f"{sorted(self.models)}")
        common = self._decode(sunspec.COMMON) if 1 in self.models else {}  # static: read once
        self.device = " ".join(str(common.get(k) or "") for k in ("Mn", "Md", "SN")).strip() or "SunSpec battery"
        return self.read()

    def _decode(self, model: sunspec.Model) -> dict[str, float | str | None]:
        try:
            return sunspec.decode(model, self._read(self.models[model.id], model.length))
        except sunspec.SunSpecError as exc:
            raise DeviceError(f"{self.endpoint}: {exc}") from exc

    def read(self) -> BatteryReading:
        if not self.models:
            return self.connect()
        bat, ctl = self._decode(sunspec.BATTERY), self._decode(sunspec.STORAGE)

        def need(values: dict[str, float | str | None], model: int, name: str, low: float, high: float) -> float:
            value = values.get(name)
            if not isinstance(value, float | int) or not low <= float(value) <= high:
                raise DeviceError(f"{self.endpoint}: model {model} point {name}={value} is missing or outside "
                                  f"[{low:g}, {high:g}]")
            return float(value)

        capacity = need(bat, 802, "WHRtg", 1e-9, 1e12)
        max_charge = need(bat, 802, "WChaRteMax", 1e-9, 1e12)
        max_discharge = need(bat, 802, "WDisChaRteMax", 1e-9, 1e12)
        soc = need(bat, 802, "SoC", 0, 100)
        soh = need(bat, 802, "SoH", 0, 100) if bat.get("SoH") is not None else 100.0
        rsv_min = need(bat, 802, "SoCRsvMin", 0, 100) if bat.get("SoCRsvMin") is not None else 0.0
        rsv_max = need(bat, 802, "SocRsvMax", 0, 100) if bat.get("SocRsvMax") is not None else 100.0
        if rsv_min > rsv_max:
            raise DeviceError(f"{self.endpoint}: model 802 SoCRsvMin={rsv_min:g}% is above SocRsvMax={rsv_max:g}%")
        wcha_max = need(ctl, 124, "WChaMax", 1e-9, 1e12)
        for name in ("InOutWRte_SF", "WChaMax_SF"):
            if ctl.get(name) is None:
                raise DeviceError(f"{self.endpoint}: model 124 scale factor {name} is not implemented")
            self.scale[name] = int(ctl[name])  # type: ignore[arg-type]
        self.wcha_max = wcha_max
        return BatteryReading(
            soc_fraction=soc / 100.0, soh_fraction=soh / 100.0, power_w=float(bat.get("W") or 0.0),
            charge_state=sunspec.CHARGE_STATES.get(int(bat.get("ChaSt") or 0), "unknown"),
            capacity_wh=capacity, max_charge_w=min(max_charge, wcha_max), max_discharge_w=max_discharge,
            reserve_min_fraction=rsv_min / 100.0, reserve_max_fraction=rsv_max / 100.0,
            commanded_w=sunspec.commanded_watts(int(ctl.get("StorCtl_Mod") or 0), float(ctl.get("OutWRte") or 0.0),
                                                float(ctl.get("InWRte") or 0.0), wcha_max),
            revert_s=float(ctl.get("InOutWRte_RvrtTms") or 0.0), device=self.device)

    # -- commands -----------------------------------------------------------------------------------------------------

    @staticmethod
    def limit(watts: float, reading: BatteryReading, *, revert_s: float, reserve_fraction: float = 0.0,
              max_discharge_w: float | None = None, max_charge_w: float | None = None) -> CommandResult:
        """The safe command for ``watts`` given the device's state: pure, so it is tested on its own."""
        usable_wh = reading.capacity_wh * reading.soh_fraction
        hours = max(revert_s, 1.0) / 3600.0
        if watts > 0:
            floor = max(reserve_fraction, reading.reserve_min_fraction)
            limits = {"rated discharge power": reading.max_discharge_w,
                      f"state of charge {reading.soc_fraction:.1%} held above the reserve {floor:.0%} "
                      f"for the {revert_s:.0f} s revert time": max(
                          0.0, (reading.soc_fraction - SOC_READ_MARGIN - floor) * usable_wh * ASSUMED_LEG_EFFICIENCY
                          / hours)}
            if max_discharge_w is not None:
                limits["the resource's maxDischargeWatts"] = max_discharge_w
        elif watts < 0:
            ceiling = reading.reserve_max_fraction
            limits = {"rated charge power": reading.max_charge_w,
                      f"state of charge {reading.soc_fraction:.1%} held below the device maximum {ceiling:.0%} "
                      f"for the {revert_s:.0f} s revert time": max(
                          0.0, (ceiling - reading.soc_fraction - SOC_READ_MARGIN) * usable_wh / hours)}
            if max_charge_w is not None:
                limits["the resource's maxChargeWatts"] = max_charge_w
        else:
            return CommandResult(0.0, 0.0, None)
        why, cap = min(limits.items(), key=lambda kv: kv[1])
        magnitude = min(abs(watts), cap)
        commanded = magnitude if watts > 0 else -magnitude
        return CommandResult(watts, commanded, why if magnitude < abs(watts) - 1e-6 else None)

    def command(self, watts: float, *, revert_s: float, reserve_fraction: float = 0.0,
                max_discharge_w: float | None = None, max_charge_w: float | None = None) -> CommandResult:
        """Read the device, limit ``watts`` (+ discharges) to what is safe, write it with the revert
        timeout and advance the heartbeat. ``revert_s`` must be positive: a rate without a timeout
        would outlive the operator."""
        if not 0 < revert_s <= MAX_REVERT_S:
            raise ValueError(f"revert_s must be in (0, {MAX_REVERT_S}], got {revert_s}")
        reading = self.read()
        result = self.limit(watts, reading, revert_s=revert_s, reserve_fraction=reserve_fraction,
                            max_discharge_w=max_discharge_w, max_charge_w=max_charge_w)
        pct = abs(result.commanded_w) / self.wcha_max * 100.0
        # Percent registers hold 10^-sf steps; round down so the rounding never exceeds a limit.
        step = 10.0 ** self.scale["InOutWRte_SF"]
        pct = int(pct / step + 1e-9) * step
        rate = sunspec.STORAGE.point("OutWRte")
        out_pct = pct if result.commanded_w > 0 else 0.0
        in_pct = pct if result.commanded_w < 0 else 0.0
        mode = sunspec.DISCHARGE_BIT if out_pct > 0 else sunspec.CHARGE_BIT if in_pct > 0 else 0
        sf = self.scale["InOutWRte_SF"]
        self._write(sunspec.STORAGE, "InOutWRte_RvrtTms", [round(revert_s)])
        self._write(sunspec.STORAGE, "OutWRte",
                    sunspec.encode(rate, out_pct, sf) + sunspec.encode(rate, in_pct, sf))
        self._write(sunspec.STORAGE, "StorCtl_Mod", [mode])
        self.heartbeat()
        return CommandResult(result.requested_w, sunspec.commanded_watts(mode, out_pct, in_pct, self.wcha_max),
                             result.limited_by)

    def heartbeat(self) -> None:
        self._write(sunspec.BATTERY, "CtrlHb", [next(self._heartbeat) % 0xFFFF])

    def idle(self) -> None:
        """Stop charging and discharging now (best effort on the way out)."""
        self._write(sunspec.STORAGE, "StorCtl_Mod", [0])

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
