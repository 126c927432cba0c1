"""The battery over Modbus TCP: the SunSpec driver against the simulator, on a real socket.

Discovery and scale factors, the revert timeout (a silent controller leaves the battery idle),
the reserve and the ratings under hypothesis-generated command sequences, a malformed device
refused with the point named, and the physics' energy balance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridshift.actuators.modbus import BatteryReading, DeviceError, ModbusBattery
from gridshift.devcluster.battery_sim import SunSpecBatterySimulator
from gridshift.ess import sunspec
from gridshift.ess.physics import BatteryPhysics


def _sim(**kw: object) -> SunSpecBatterySimulator:
    physics = BatteryPhysics(capacity_wh=kw.pop("capacity_wh", 200_000.0),  # type: ignore[arg-type]
                             max_charge_w=kw.pop("max_charge_w", 50_000.0),  # type: ignore[arg-type]
                             max_discharge_w=kw.pop("max_discharge_w", 80_000.0),  # type: ignore[arg-type]
                             soc_fraction=kw.pop("soc", 0.6), soh_fraction=kw.pop("soh", 1.0))  # type: ignore[arg-type]
    return SunSpecBatterySimulator(physics, **kw)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Iterator[SunSpecBatterySimulator]:
    with _sim() as s:
        yield s


@pytest.fixture
def battery(sim: SunSpecBatterySimulator) -> Iterator[ModbusBattery]:
    b = ModbusBattery("127.0.0.1", sim.port)
    yield b
    b.close()


# -- physics and encoding (pure) ------------------------------------------------------------------------------------

@given(st.lists(st.tuples(st.floats(-120_000, 120_000), st.floats(0.1, 900)), min_size=1, max_size=40),
       st.floats(0.5, 1.0), st.floats(0.0, 1.0), st.floats(0.5, 1.0))
def test_physics_conserves_energy_and_stays_within_its_ratings(steps: list[tuple[float, float]], eff: float,
                                                              soc: float, soh: float) -> None:
    p = BatteryPhysics(100_000, 40_000, 60_000, round_trip_efficiency=eff, soc_fraction=soc, soh_fraction=soh)
    start_wh = p.stored_wh
    for command, dt in steps:
        power = p.step(command, dt)
        assert -40_000 - 1e-6 <= power <= 60_000 + 1e-6
        assert 0.0 <= p.soc_fraction <= 1.0
        assert power == 0 or (power > 0) == (command > 0), "never the opposite of what was asked"
    leg = eff ** 0.5
    expected = start_wh + p.charged_ac_wh * leg - p.discharged_ac_wh / leg
    assert p.stored_wh == pytest.approx(expected, abs=1e-6 * 100_000)


def test_round_trip_loses_what_the_efficiency_says() -> None:
    p = BatteryPhysics(10_000, 5_000, 5_000, round_trip_efficiency=0.81, soc_fraction=0.5)
    p.step(-1_000, 3600)          # 1 kWh in at the meter
    p.step(1_000, 3600 * 0.81)    # 0.81 kWh out brings it back
    assert p.soc_fraction == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize(("point", "value", "sf", "raw"), [
    (sunspec.BATTERY.point("W"), -12_340.0, 1, [(-1234) & 0xFFFF]),
    (sunspec.BATTERY.point("SoC"), 55.5, -1, [555]),
    (sunspec.BATTERY.point("NCyc"), 70_000, 0, [1, 4464]),
])
def test_encode_and_decode_apply_scale_factors(point: sunspec.Point, value: float, sf: int, raw: list[int]) -> None:
    assert sunspec.encode(point, value, sf) == raw
    with pytest.raises(sunspec.SunSpecError, match=point.name):
        sunspec.encode(point, 1e12, sf)


def test_an_unimplemented_value_reads_as_none() -> None:
    regs = [0] * sunspec.BATTERY.length
    regs[sunspec.BATTERY.point("W").offset] = 0x8000
    assert sunspec.decode(sunspec.BATTERY, regs)["W"] is None


# -- the driver against the simulator over Modbus TCP -------------------------------------------------------------

def test_discovery_finds_the_models_and_applies_their_scale_factors(battery: ModbusBattery,
                                                                    sim: SunSpecBatterySimulator) -> None:
    reading = battery.connect()
    assert set(battery.models) == {1, 802, 124}
    assert battery.models[802] > 40_002, "found by walking the model list, not assumed"
    # 200 kWh and 80 kW do not fit 16 bits unscaled: the simulator publishes them with scale factors.
    assert sim.sf["WHRtg_SF"] > 0 and sim.sf["WChaDisChaMax_SF"] > 0
    assert reading.capacity_wh == 200_000 and reading.max_discharge_w == 80_000 and reading.max_charge_w == 50_000
    assert reading.soc_fraction == pytest.approx(0.6, abs=1e-3)
    assert reading.reserve_min_fraction == pytest.approx(0.10) and reading.reserve_max_fraction == pytest.approx(0.95)
    assert "sim-bess" in reading.device


@pytest.mark.parametrize("base", [0, 50000])
def test_discovery_tries_every_standard_base_address(base: int) -> None:
    with _sim(base=base) as s:
        b = ModbusBattery("127.0.0.1", s.port)
        try:
            assert b.connect().capacity_wh == 200_000
            assert min(b.models.values()) > base
        finally:
            b.close()


def test_a_discharge_setpoint_is_applied_and_reverts_to_idle_when_the_controller_goes_silent(
        battery: ModbusBattery, sim: SunSpecBatterySimulator) -> None:
    battery.connect()
    result = battery.command(20_000, revert_s=2, reserve_fraction=0.2)
    assert result.commanded_w == pytest.approx(20_000) and result.limited_by is None
    time.sleep(0.5)
    assert battery.read().power_w == pytest.approx(20_000)
    assert battery.read().charge_state == "discharging"
    # The operator "dies": nothing refreshes the rate or the heartbeat.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and battery.read().power_w != 0:
        time.sleep(0.2)
    reading = battery.read()
    assert reading.power_w == 0 and reading.commanded_w == 0, "the device reverted to idle by itself"
    assert sim.reverts, "the revert came from the timeout"


def test_a_kept_alive_setpoint_does_not_revert(battery: ModbusBattery, sim: SunSpecBatterySimulator) -> None:
    battery.connect()
    for _ in range(6):
        battery.command(-10_000, revert_s=2)
        time.sleep(0.5)
    assert battery.read().power_w == pytest.approx(-10_000) and not sim.reverts


def test_charge_and_discharge_are_clipped_to_the_ratings_and_say_why(battery: ModbusBattery) -> None:
    battery.connect()
    up = battery.command(500_000, revert_s=60)
    assert up.commanded_w == pytest.approx(80_000) and up.limited_by == "rated discharge power"
    down = battery.command(-500_000, revert_s=60)
    assert down.commanded_w == pytest.approx(-50_000) and down.limited_by == "rated charge power"
    own = battery.command(500_000, revert_s=60, max_discharge_w=30_000)
    assert own.commanded_w == pytest.approx(30_000) and "maxDischargeWatts" in (own.limited_by or "")


def test_at_the_reserve_a_discharge_request_commands_nothing() -> None:
    with _sim(soc=0.2) as s:
        b = ModbusBattery("127.0.0.1", s.port)
        try:
            b.connect()
            result = b.command(40_000, revert_s=60, reserve_fraction=0.25)
            assert result.commanded_w == 0 and "reserve 25%" in (result.limited_by or "")
            time.sleep(0.4)
            assert b.read().power_w == 0
        finally:
            b.close()


READING = BatteryReading(soc_fraction=0.5, soh_fraction=0.9, power_w=0, charge_state="holding", capacity_wh=100_000,
                         max_charge_w=40_000, max_discharge_w=60_000, reserve_min_fraction=0.1,
                         reserve_max_fraction=0.95, commanded_w=0, revert_s=0, device="x")


@given(st.floats(-1e6, 1e6), st.floats(0, 1), st.floats(0.5, 1), st.floats(0, 0.9), st.floats(1, 3600))
def test_the_limit_holds_reserve_ceiling_and_ratings_for_the_whole_revert_time(
        watts: float, soc: float, soh: float, reserve: float, revert_s: float) -> None:
    reading = BatteryReading(**{**READING.__dict__, "soc_fraction": soc, "soh_fraction": soh})
    result = ModbusBattery.limit(watts, reading, revert_s=revert_s, reserve_fraction=reserve)
    usable = reading.capacity_wh * soh
    held_wh = result.commanded_w * revert_s / 3600
    assert -reading.max_charge_w - 1e-6 <= result.commanded_w <= reading.max_discharge_w + 1e-6
    assert result.commanded_w * watts >= 0, "never the opposite direction"
    if result.commanded_w > 0:
        assert soc - held_wh / usable >= max(reserve, 0.1) - 1e-9
    if result.commanded_w < 0:
        assert soc - held_wh / usable <= 0.95 + 1e-9


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(-200_000, 200_000), st.floats(1, 120)), min_size=1, max_size=12),
       st.floats(0.12, 0.9))
@example(steps=[(2050.0, 94.0), (26550.0, 120.0), (80000.0, 120.0)], soc=0.375)  # conversion loss went past the reserve
def test_no_command_sequence_takes_the_battery_past_its_reserve_or_ratings(steps: list[tuple[float, float]],
                                                                           soc: float) -> None:
    """Commands over real Modbus; the simulator's clock is advanced by hand (each step at most the
    revert time, as the operator refreshes within it) and the physical state checked after each."""
    revert_s = 120.0
    with _sim(soc=soc, step_s=3600.0, capacity_wh=50_000.0) as s:
        b = ModbusBattery("127.0.0.1", s.port)
        try:
            b.connect()
            for watts, dt in steps:
                b.command(watts, revert_s=revert_s, reserve_fraction=0.3)
                s.step(dt)
                floor = min(soc, 0.3)  # starting below the reserve it may only stay or charge
                assert s.physics.soc_fraction >= floor - 1e-3
                assert s.physics.soc_fraction <= max(soc, 0.95) + 1e-3
                assert -50_000 - 1 <= s.physics.power_w <= 80_000 + 1
        finally:
            b.close()


@pytest.mark.parametrize(("kw", "message"), [
    ({"models": (1, 802)}, "no SunSpec model 124"),
    ({"models": (1, 124)}, "no SunSpec model 802"),
    ({"overrides": {"802.WHRtg": 0}}, "WHRtg"),
    ({"overrides": {"802.SoCRsvMin": 900, "802.SocRsvMax": 200}}, "SoCRsvMin=90% is above SocRsvMax=20%"),
    ({"overrides": {"802.SoC_SF": 12}}, "scale factor SoC_SF=12"),
    ({"overrides": {"124.InOutWRte_SF": 0x8000}}, "OutWRte is set but its scale factor InOutWRte_SF is not"),
])
def test_a_malformed_device_map_is_refused_naming_the_point(kw: dict, message: str) -> None:
    with _sim(**kw) as s:
        b = ModbusBattery("127.0.0.1", s.port)
        try:
            with pytest.raises(DeviceError, match=message.replace("(", r"\(")):
                b.connect()
        finally:
            b.close()


def test_no_device_at_the_address_is_a_clear_error() -> None:
    from gridshift.devcluster.controlplane import free_port
    b = ModbusBattery("127.0.0.1", free_port(), timeout_s=0.5)
    with pytest.raises(DeviceError, match="cannot connect"):
        b.connect()


def test_the_device_refuses_writes_to_read_only_points(battery: ModbusBattery) -> None:
    battery.connect()
    with pytest.raises(DeviceError, match="refused SoC"):
        battery._write(sunspec.BATTERY, "SoC", [1000])


def test_gridshift_dev_battery_serves_a_device_the_driver_can_drive(tmp_path) -> None:
    import subprocess
    import sys
    import urllib.request

    from gridshift.devcluster.controlplane import free_ports
    port, metrics = free_ports(2)
    proc = subprocess.Popen([sys.executable, "-m", "gridshift.cli", "dev", "battery", "--port", str(port),
                             "--capacity-wh", "5000", "--max-discharge-w", "2000", "--soc", "0.5",
                             "--metrics-port", str(metrics)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and f"modbus://127.0.0.1:{port}" in proc.stdout.readline()
        b = ModbusBattery("127.0.0.1", port)
        try:
            assert b.connect().capacity_wh == 5000
            assert b.command(5000, revert_s=30).commanded_w == pytest.approx(2000)
        finally:
            b.close()
        proc.stdout.readline()
        time.sleep(0.5)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
        assert 'ess_power_watts{ess="ess"} 2000.0' in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_gridshift_dev_battery_rejects_impossible_ratings() -> None:
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "gridshift.cli", "dev", "battery", "--soc", "1.5"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Invalid value for '--soc': 1.5 is not in the range 0.0<=x<=1.0" in done.stderr


def test_modbus_tcp_security_needs_a_client_certificate_from_the_devices_ca() -> None:
    """Modbus/TCP Security (TLS, port 802 by convention): the device trusts one CA for clients."""
    from gridshift.actuators.modbus import DeviceUnreachable, tls_context
    from gridshift.devcluster.battery_sim import server_tls_context
    from gridshift.devcluster.pki import issue, new_ca

    ca, ca_key = new_ca()
    server_cert, server_key = issue(ca, ca_key, "bess", server=True, ips=("127.0.0.1",))
    client_cert, client_key = issue(ca, ca_key, "gridshift", server=False)
    other_ca, other_key = new_ca("someone-else")
    stranger_cert, stranger_key = issue(other_ca, other_key, "stranger", server=False)
    with _sim(tls=server_tls_context(ca, server_cert, server_key)) as s:
        b = ModbusBattery("127.0.0.1", s.port, tls=tls_context(ca, client_cert, client_key), timeout_s=2)
        try:
            assert b.connect().capacity_wh == 200_000 and "(TLS)" in b.endpoint
            assert b.command(10_000, revert_s=30).commanded_w == pytest.approx(10_000)
        finally:
            b.close()
        for cert, key in ((stranger_cert, stranger_key),):
            intruder = ModbusBattery("127.0.0.1", s.port, tls=tls_context(ca, cert, key), timeout_s=1)
            try:
                with pytest.raises(DeviceUnreachable):
                    intruder.connect()
            finally:
                intruder.close()
        plain = ModbusBattery("127.0.0.1", s.port, timeout_s=1)
        try:
            with pytest.raises(DeviceUnreachable):
                plain.connect()
        finally:
            plain.close()
