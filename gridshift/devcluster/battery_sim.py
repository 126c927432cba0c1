"""A SunSpec battery on Modbus TCP: the device the Modbus driver is tested against and the demo
drives. It serves model 1 (common), 802 (battery) and 124 (storage controls) from a pymodbus
server and runs ``BatteryPhysics`` behind them.

Control follows model 124: with ``StorCtl_Mod`` bit 1 (discharge) set the battery discharges at
``OutWRte`` percent of ``WChaMax``; with bit 0 (charge) it charges at ``InWRte`` percent; both
or neither idles. A rate stays in force for ``InOutWRte_RvrtTms`` seconds after it was written
(0: until changed), and also only while the controller heartbeat ``CtrlHb`` (model 802) keeps
changing within that time; then the battery reverts to idle by itself, as a real PCS does when its
controller dies. Like a real device it does not second-guess the reserve: it discharges to empty
if told to, and it records each command it accepted so that tests can check the driver never asked
for anything unsafe. Writes to read-only points or out-of-range values are refused with Modbus
exception 2 or 3.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer, ModbusTlsServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gridshift.actuators.modbus import load_cert_chain
from gridshift.ess import sunspec
from gridshift.ess.physics import BatteryPhysics

READ_FUNCTIONS = (3,)
WRITE_FUNCTIONS = (6, 16)
CHARGE_STATE_CODE = {"off": 1, "empty": 2, "discharging": 3, "charging": 4, "full": 5, "holding": 6}


def server_tls_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A Modbus/TCP Security server context: present ``cert_pem``, require a client certificate from ``ca_pem``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    load_cert_chain(ctx, cert_pem, key_pem)
    return ctx


@dataclass(frozen=True)
class Command:
    """One rate the battery accepted."""

    time: float
    watts: float           # + discharge
    soc_fraction: float    # when it was accepted
    revert_s: float


class SunSpecBatterySimulator(Collector):
    def __init__(self, physics: BatteryPhysics, *, name: str = "ess", host: str = "127.0.0.1", port: int = 0,
                 unit_id: int = 1, base: int = 40000, reserve_min_pct: float = 10.0,
                 reserve_max_pct: float = 95.0, models: tuple[int, ...] = (1, 802, 124),
                 overrides: Mapping[str, int] | None = None, step_s: float = 0.1,
                 tls: ssl.SSLContext | None = None):
        self.physics = physics
        self.name = name
        self.host, self.port, self.unit_id, self.base = host, port, unit_id, base
        self.step_s = step_s
        self.tls = tls  # Modbus/TCP Security: a server context that requires client certificates
        self.lock = threading.Lock()
        self.commands: list[Command] = []
        self.reverts: list[float] = []
        self.overrides = dict(overrides or {})
        # Scale factors: chosen so that the ratings fit, as a vendor would.
        rating = max(physics.max_charge_w, physics.max_discharge_w)
        self.sf = {"WHRtg_SF": sunspec.scale_for(physics.capacity_wh), "WChaDisChaMax_SF": sunspec.scale_for(rating),
                   "W_SF": sunspec.scale_for(rating), "SoC_SF": -1, "SoH_SF": -1, "AHRtg_SF": 0,
                   "WChaMax_SF": sunspec.scale_for(rating), "WChaDisChaGra_SF": 0, "MinRsvPct_SF": -1,
                   "ChaState_SF": -1, "InOutWRte_SF": -1}
        self.reserve_min_pct, self.reserve_max_pct = reserve_min_pct, reserve_max_pct
        # Controls (model 124) and heartbeats.
        self.storctl = 0
        self.out_pct = 0.0
        self.in_pct = 0.0
        self.revert_s = 0.0
        self.rate_written_at = 0.0
        self.ctrl_hb = 0
        self.hb_changed_at = time.monotonic()
        self.hb = 0
        # Register map.
        self.offsets: dict[int, int] = {}   # model id -> address of its first data register
        size = 2 + sum(2 + sunspec.MODELS[m].length for m in models) + 2
        self.regs = [0] * size
        self.regs[0:2] = sunspec.MARKER
        address = base + 2
        for model_id in models:
            model = sunspec.MODELS[model_id]
            self._put(address, [model.id, model.length])
            self.offsets[model.id] = address + 2
            address += 2 + model.length
        self._put(address, [sunspec.END_ID, 0])
        if 1 in self.offsets:
            self._write_model(sunspec.COMMON, {"Mn": "gridshift", "Md": "sim-bess", "Vr": "1.0",
                                               "SN": f"SIM-{name}", "DA": unit_id})
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: ModbusTcpServer | None = None
        self._refresh()

    # -- registers ----------------------------------------------------------------------------------------------------

    def _put(self, address: int, values: list[int]) -> None:
        start = address - self.base
        self.regs[start:start + len(values)] = values

    def _write_model(self, model: sunspec.Model, values: Mapping[str, Any]) -> None:
        start = self.offsets.get(model.id)
        if start is None:
            return
        for offset, reg in sunspec.layout(values, model).items():
            self.regs[start + offset - self.base] = reg

    def _refresh(self) -> None:
        """Write the physical state into models 802 and 124 (caller holds the lock or owns the object)."""
        p = self.physics
        state = "discharging" if p.power_w > 0 else "charging" if p.power_w < 0 else (
            "empty" if p.soc_fraction <= 0.0 else "full" if p.soc_fraction >= 1.0 else "holding")
        battery: dict[str, Any] = {
            **self.sf, "AHRtg": 0, "WHRtg": p.capacity_wh, "WChaRteMax": p.max_charge_w,
            "WDisChaRteMax": p.max_discharge_w, "SoCMax": 100.0, "SoCMin": 0.0, "SocRsvMax": self.reserve_max_pct,
            "SoCRsvMin": self.reserve_min_pct, "SoC": 100.0 * p.soc_fraction, "SoH": 100.0 * p.soh_fraction,
            "NCyc": int(p.discharged_ac_wh / p.capacity_wh), "ChaSt": CHARGE_STATE_CODE[state], "LocRemCtl": 0,
            "Hb": self.hb % 0xFFFF, "CtrlHb": self.ctrl_hb, "State": 2, "W": p.power_w}
        controls: dict[str, Any] = {
            **self.sf, "WChaMax": p.max_charge_w, "WChaGra": 100, "WDisChaGra": 100, "StorCtl_Mod": self.storctl,
            "MinRsvPct": self.reserve_min_pct, "ChaState": 100.0 * p.soc_fraction,
            "ChaSt": CHARGE_STATE_CODE[state], "OutWRte": self.out_pct, "InWRte": self.in_pct,
            "InOutWRte_WinTms": 0, "InOutWRte_RvrtTms": self.revert_s, "InOutWRte_RmpTms": 0}
        self._write_model(sunspec.BATTERY, battery)
        self._write_model(sunspec.STORAGE, controls)
        for key, raw in self.overrides.items():  # a malformed device, register by register
            model_id, point = key.split(".", 1)
            if int(model_id) in self.offsets:
                address = self.offsets[int(model_id)] + sunspec.MODELS[int(model_id)].point(point).offset
                self.regs[address - self.base] = int(raw) & 0xFFFF

    def _point_at(self, address: int) -> tuple[sunspec.Model, sunspec.Point] | None:
        for model_id, start in self.offsets.items():
            model = sunspec.MODELS[model_id]
            for p in model.points:
                if start + p.offset <= address < start + p.offset + p.size:
                    return model, p
        return None

    def _sf(self, name: str) -> float:
        return 10.0 ** self.sf[name]

    def _accept(self, address: int, values: list[int]) -> ExcCodes | None:
        """Validate and apply a write (caller holds the lock)."""
        for i, raw in enumerate(values):
            found = self._point_at(address + i)
            if found is None or not found[1].writable:
                return ExcCodes.ILLEGAL_ADDRESS
            model, point = found
            signed = raw - 0x10000 if point.type == "int16" and raw >= 0x8000 else raw
            if model.id == 124:
                if point.name in ("OutWRte", "InWRte"):
                    pct = signed * self._sf("InOutWRte_SF")
                    rating = self.physics.max_discharge_w if point.name == "OutWRte" else self.physics.max_charge_w
                    if not 0 <= pct <= 100.0 * rating / self.physics.max_charge_w + 1e-6:
                        return ExcCodes.ILLEGAL_VALUE
                    if point.name == "OutWRte":
                        self.out_pct = pct
                    else:
                        self.in_pct = pct
                    self.rate_written_at = time.monotonic()
                elif point.name == "StorCtl_Mod":
                    if raw & ~0x3:
                        return ExcCodes.ILLEGAL_VALUE
                    self.storctl = raw
                    self.rate_written_at = time.monotonic()
                elif point.name == "InOutWRte_RvrtTms":
                    self.revert_s = float(raw)
                elif point.name == "MinRsvPct":
                    self.reserve_min_pct = raw * self._sf("MinRsvPct_SF")
            elif point.name == "CtrlHb":
                if raw != self.ctrl_hb:
                    self.hb_changed_at = time.monotonic()
                self.ctrl_hb = raw
            elif point.name in ("SoCRsvMin", "SocRsvMax"):
                pct = raw * self._sf("SoC_SF")
                if not 0 <= pct <= 100:
                    return ExcCodes.ILLEGAL_VALUE
                if point.name == "SoCRsvMin":
                    self.reserve_min_pct = pct
                else:
                    self.reserve_max_pct = pct
        if self.command_w != 0:
            self.commands.append(Command(time.time(), self.command_w, self.physics.soc_fraction, self.revert_s))
        return None

    @property
    def command_w(self) -> float:
        """The AC power the controls ask for, + discharging (WChaMax is the charge rating)."""
        return sunspec.commanded_watts(self.storctl, self.out_pct, self.in_pct, self.physics.max_charge_w)

    async def _on_access(self, function_code: int, start_address: int, address: int, count: int,
                         current_registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        if address < self.base or address + count > self.base + len(self.regs):
            return ExcCodes.ILLEGAL_ADDRESS
        with self.lock:
            if set_values is not None:
                if function_code not in WRITE_FUNCTIONS:
                    return ExcCodes.ILLEGAL_FUNCTION
                refused = self._accept(address, [int(v) for v in set_values])
                if refused is not None:
                    return refused
                self._put(address, [int(v) for v in set_values])
            elif function_code not in READ_FUNCTIONS:
                return ExcCodes.ILLEGAL_FUNCTION
            current_registers[self.base - start_address:self.base - start_address + len(self.regs)] = self.regs
        return None

    # -- physics ------------------------------------------------------------------------------------------------------

    def step(self, dt_s: float) -> None:
        now = time.monotonic()
        with self.lock:
            active = self.command_w != 0
            if active and self.revert_s > 0 and (now - self.rate_written_at > self.revert_s
                                                 or now - self.hb_changed_at > self.revert_s):
                self.storctl, self.out_pct, self.in_pct = 0, 0.0, 0.0
                self.reverts.append(time.time())
            self.physics.step(self.command_w, dt_s)
            self.hb = int(time.monotonic())
            self._refresh()

    def _physics_loop(self) -> None:
        last = time.monotonic()
        while not self.stop_event.wait(self.step_s):
            now = time.monotonic()
            self.step(now - last)
            last = now

    # -- Prometheus (the telemetry twin registers this collector) -----------------------------------------------------

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.lock:
            p = self.physics
            values = {"ess_state_of_charge_ratio": ("State of charge, 0 to 1.", p.soc_fraction),
                      "ess_state_of_health_ratio": ("State of health, 0 to 1.", p.soh_fraction),
                      "ess_power_watts": ("AC power, positive when discharging.", p.power_w),
                      "ess_capacity_watt_hours": ("Nameplate energy capacity.", p.capacity_wh)}
        for metric, (help_text, value) in values.items():
            family = GaugeMetricFamily(metric, help_text, labels=["ess"])
            family.add_metric([self.name], value)
            yield family

    # -- serving ------------------------------------------------------------------------------------------------------

    def start(self) -> SunSpecBatterySimulator:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            # pymodbus' TLS framer carries no unit id (it arrives as 0): over TLS the device answers any.
            device = SimDevice(id=0 if self.tls is not None else self.unit_id, action=self._on_access,
                               simdata=[SimData(self.base, values=[0] * len(self.regs), datatype=DataType.REGISTERS)])
            self.server = (ModbusTlsServer(device, address=(self.host, self.port), sslctx=self.tls)
                           if self.tls is not None else ModbusTcpServer(device, address=(self.host, self.port)))
            await self.server.serve_forever(background=True)
            if self.port == 0 and self.server.transport is not None:
                self.port = self.server.transport.sockets[0].getsockname()[1]
            ready.set()
            await self.server.serving

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            try:
                self.loop.run_until_complete(serve())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True, name=f"sunspec-{self.name}")
        self.thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"battery simulator did not start on {self.host}:{self.port}: "
                               f"{failure[0] if failure else 'timeout'}")
        threading.Thread(target=self._physics_loop, daemon=True, name=f"sunspec-{self.name}-physics").start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.loop is not None and self.server is not None and not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop)
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> SunSpecBatterySimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
