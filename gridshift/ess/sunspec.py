"""SunSpec over Modbus, pure: the register maps of the models a battery needs and their encoding.

A SunSpec device starts with the marker ``SunS`` at a base address (40000, 0 or 50000), followed by
models, each a header ``(ID, L)`` and ``L`` registers, and ends with ``(0xFFFF, 0)``. gridshift reads
model 1 (common: maker, model, serial), model 802 (battery: ratings, state of charge and health,
power, reserve limits, heartbeats) and model 124 (basic storage controls: the charge and discharge
rates it writes, with a revert timeout). Values carry power-of-ten scale factors (``sunssf``
points); a register holding the "not implemented" pattern reads as None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

MARKER = (0x5375, 0x6E53)  # "SunS"
BASE_ADDRESSES = (40000, 0, 50000)
END_ID = 0xFFFF
MAX_SCALE = 10  # |scale factor| above this is not a real device

PointType = Literal["uint16", "int16", "enum16", "bitfield16", "uint32", "sunssf", "string"]
NOT_IMPLEMENTED = {"uint16": 0xFFFF, "enum16": 0xFFFF, "bitfield16": 0xFFFF, "int16": 0x8000, "sunssf": 0x8000,
                   "uint32": 0xFFFFFFFF}


class SunSpecError(ValueError):
    """The device's register map is not a SunSpec battery gridshift can drive safely."""


class AddressRefused(Exception):
    """The device answered a read with a Modbus exception (no such address): not its base."""


@dataclass(frozen=True)
class Point:
    name: str
    offset: int          # registers after the model header
    type: PointType
    sf: str | None = None
    size: int = 1
    writable: bool = False


@dataclass(frozen=True)
class Model:
    id: int
    length: int
    points: tuple[Point, ...]

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"model {self.id} has no point {name}")


COMMON = Model(1, 66, (
    Point("Mn", 0, "string", size=16), Point("Md", 16, "string", size=16), Point("Opt", 32, "string", size=8),
    Point("Vr", 40, "string", size=8), Point("SN", 48, "string", size=16), Point("DA", 64, "uint16", writable=True),
))

# Model 802, battery base (the points gridshift uses, at their standard offsets).
BATTERY = Model(802, 62, (
    Point("AHRtg", 0, "uint16", "AHRtg_SF"),
    Point("WHRtg", 1, "uint16", "WHRtg_SF"),
    Point("WChaRteMax", 2, "uint16", "WChaDisChaMax_SF"),
    Point("WDisChaRteMax", 3, "uint16", "WChaDisChaMax_SF"),
    Point("SoCMax", 5, "uint16", "SoC_SF"),
    Point("SoCMin", 6, "uint16", "SoC_SF"),
    Point("SocRsvMax", 7, "uint16", "SoC_SF", writable=True),
    Point("SoCRsvMin", 8, "uint16", "SoC_SF", writable=True),
    Point("SoC", 9, "uint16", "SoC_SF"),
    Point("SoH", 11, "uint16", "SoH_SF"),
    Point("NCyc", 12, "uint32", size=2),
    Point("ChaSt", 14, "enum16"),
    Point("LocRemCtl", 15, "enum16"),
    Point("Hb", 16, "uint16"),
    Point("CtrlHb", 17, "uint16", writable=True),
    Point("State", 20, "enum16"),
    Point("W", 45, "int16", "W_SF"),
    Point("AHRtg_SF", 50, "sunssf"),
    Point("WHRtg_SF", 51, "sunssf"),
    Point("WChaDisChaMax_SF", 52, "sunssf"),
    Point("SoC_SF", 54, "sunssf"),
    Point("SoH_SF", 56, "sunssf"),
    Point("W_SF", 61, "sunssf"),
))

# Model 124, basic storage controls. OutWRte / InWRte are percent of WChaMax.
STORAGE = Model(124, 24, (
    Point("WChaMax", 0, "uint16", "WChaMax_SF"),
    Point("WChaGra", 1, "uint16", "WChaDisChaGra_SF"),
    Point("WDisChaGra", 2, "uint16", "WChaDisChaGra_SF"),
    Point("StorCtl_Mod", 3, "bitfield16", writable=True),
    Point("MinRsvPct", 5, "uint16", "MinRsvPct_SF", writable=True),
    Point("ChaState", 6, "uint16", "ChaState_SF"),
    Point("ChaSt", 9, "enum16"),
    Point("OutWRte", 10, "int16", "InOutWRte_SF", writable=True),
    Point("InWRte", 11, "int16", "InOutWRte_SF", writable=True),
    Point("InOutWRte_WinTms", 12, "uint16", writable=True),
    Point("InOutWRte_RvrtTms", 13, "uint16", writable=True),
    Point("InOutWRte_RmpTms", 14, "uint16", writable=True),
    Point("WChaMax_SF", 16, "sunssf"),
    Point("WChaDisChaGra_SF", 17, "sunssf"),
    Point("MinRsvPct_SF", 19, "sunssf"),
    Point("ChaState_SF", 20, "sunssf"),
    Point("InOutWRte_SF", 23, "sunssf"),
))

MODELS = {m.id: m for m in (COMMON, BATTERY, STORAGE)}

# StorCtl_Mod bits and ChaSt values.
CHARGE_BIT, DISCHARGE_BIT = 0x1, 0x2
CHARGE_STATES = {1: "off", 2: "empty", 3: "discharging", 4: "charging", 5: "full", 6: "holding", 7: "testing"}


def commanded_watts(storctl: int, out_pct: float, in_pct: float, wcha_max: float) -> float:
    """The power model 124's controls ask for, + discharging: ``OutWRte`` percent of ``WChaMax`` with
    only the discharge bit set, ``InWRte`` percent with only the charge bit, otherwise idle."""
    discharge, charge = bool(storctl & DISCHARGE_BIT), bool(storctl & CHARGE_BIT)
    if discharge and not charge:
        return out_pct / 100.0 * wcha_max
    if charge and not discharge:
        return -in_pct / 100.0 * wcha_max
    return 0.0


def _raw(point: Point, regs: Sequence[int]) -> int | None:
    if point.type == "string":
        raise TypeError(f"{point.name} is a string")
    value = (regs[point.offset] << 16) | regs[point.offset + 1] if point.type == "uint32" else regs[point.offset]
    if value == NOT_IMPLEMENTED[point.type]:
        return None
    if point.type in ("int16", "sunssf") and value >= 0x8000:
        value -= 0x10000
    return value


def decode(model: Model, regs: Sequence[int]) -> dict[str, float | str | None]:
    """The model's points from its ``length`` registers (header excluded), scale factors applied."""
    if len(regs) < model.length:
        raise SunSpecError(f"model {model.id}: {len(regs)} registers, expected {model.length}")
    out: dict[str, float | str | None] = {}
    for p in model.points:
        if p.type == "string":
            raw = b"".join(r.to_bytes(2, "big") for r in regs[p.offset:p.offset + p.size])
            out[p.name] = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
            continue
        value = _raw(p, regs)
        if p.type == "sunssf" and value is not None and abs(value) > MAX_SCALE:
            raise SunSpecError(f"model {model.id}: scale factor {p.name}={value} is outside ±{MAX_SCALE}")
        out[p.name] = value
    for p in model.points:
        if p.sf is not None and out[p.name] is not None:
            sf = out[p.sf]
            if sf is None:
                raise SunSpecError(f"model {model.id}: {p.name} is set but its scale factor {p.sf} is not")
            out[p.name] = float(out[p.name]) * 10.0 ** float(sf)  # type: ignore[arg-type]
    return out


def encode(point: Point, value: float, sf: int = 0) -> list[int]:
    """Registers for ``value`` in engineering units under scale factor ``sf``."""
    raw = round(value / 10.0 ** sf)
    if point.type == "int16":
        if not -0x7FFF <= raw <= 0x7FFF:
            raise SunSpecError(f"{point.name}={value} does not fit int16 at scale 10^{sf}")
        return [raw & 0xFFFF]
    if point.type == "sunssf":
        if not -MAX_SCALE <= raw <= MAX_SCALE:
            raise SunSpecError(f"scale factor {point.name}={raw} is outside ±{MAX_SCALE}")
        return [raw & 0xFFFF]
    if point.type == "uint32":
        if not 0 <= raw < 0xFFFFFFFF:
            raise SunSpecError(f"{point.name}={value} does not fit uint32 at scale 10^{sf}")
        return [raw >> 16, raw & 0xFFFF]
    if point.type == "string":
        raise TypeError("use encode_string")
    if not 0 <= raw < 0xFFFF:
        raise SunSpecError(f"{point.name}={value} does not fit uint16 at scale 10^{sf}")
    return [raw]


def encode_string(text: str, size: int) -> list[int]:
    data = text.encode("ascii")[: size * 2].ljust(size * 2, b"\0")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, size * 2, 2)]


def scale_for(value: float, digits: int = 4) -> int:
    """The scale factor that keeps ``value`` within a 16-bit register with ``digits`` significant digits."""
    sf = 0
    while abs(value) / 10.0 ** sf >= 10 ** digits and sf < MAX_SCALE:
        sf += 1
    return sf


def walk(read: Callable[[int, int], Sequence[int]], bases: Sequence[int] = BASE_ADDRESSES) -> dict[int, int]:
    """Model ID → address of its first data register, found by walking the model list from the
    ``SunS`` marker. ``read(address, count)`` reads holding registers; it raises ``AddressRefused``
    when the device answers with an exception (the next base is tried), anything else propagates."""
    for base in bases:
        try:
            if tuple(read(base, 2)) != MARKER:
                continue
        except AddressRefused:
            continue
        found: dict[int, int] = {}
        address = base + 2
        for _ in range(256):
            model_id, length = read(address, 2)
            if model_id == END_ID:
                return found
            known = MODELS.get(model_id)
            if known is not None and length < known.length:
                raise SunSpecError(f"model {model_id} at {address} declares {length} registers; "
                                   f"SunSpec defines {known.length}")
            found.setdefault(model_id, address + 2)
            address += 2 + length
        raise SunSpecError(f"no end marker after 256 models from base {base}")
    raise SunSpecError(f"no SunSpec marker 'SunS' at any of the base addresses {', '.join(map(str, bases))}")


def layout(values: Mapping[str, float | str], model: Model) -> dict[int, int]:
    """Offset → register for a model from engineering values and the scale factors among them
    (used by the simulator to write its map)."""
    regs: dict[int, int] = {}
    for p in model.points:
        if p.name not in values:
            continue
        if p.type == "string":
            regs.update(enumerate(encode_string(str(values[p.name]), p.size), start=p.offset))
            continue
        sf = int(values[p.sf]) if p.sf is not None else 0
        regs.update(enumerate(encode(p, float(values[p.name]), sf), start=p.offset))
    return regs
