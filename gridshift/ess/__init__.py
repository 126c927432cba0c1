"""Energy storage, pure: the battery's physics and the SunSpec register maps it speaks over Modbus.
No I/O; the Modbus driver (``gridshift.actuators.modbus``) and the battery simulator
(``gridshift.devcluster.battery_sim``) put these on the wire."""
