"""SO-100 / SO-101 follower and leader arms: six STS3215 servos, ids 1-6, on one Feetech bus.

Joint values are LeRobot's SO follower units (degrees for the five arm joints, 0-100 for the gripper; see
`calibration.py`) once the arm is calibrated, raw Present_Position ticks (0..4095) before. The follower
holds torque and takes goals through the safety clamps (`safety.py`); the leader's torque stays off so a
hand can move it. Used as a context manager, an arm releases torque however the block ends, SIGTERM
included.

Stalls: if the host stops sending (policy or bus stalled), each servo keeps driving to its last goal on its
own; with `watchdog_s` the follower re-commands its present position after that long without a goal, so
a stale goal is not finished. A bus error raises (after the bus's retries) rather than guessing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from smolvla.robots import calibration as cal
from smolvla.robots.calibration import MotorCalibration, NormMode
from smolvla.robots.feetech import protocol as proto
from smolvla.robots.feetech.bus import DEFAULT_TIMEOUT_S, FeetechBus, Port
from smolvla.robots.feetech.control_table import DEFAULT_BAUDRATE, MAX_TICK, MODEL_NUMBER_STS3215
from smolvla.robots.safety import Watchdog, clamp_goal, torque_released_on_exit, validate_max_relative_target

log = logging.getLogger(__name__)

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
IDS = {joint: i + 1 for i, joint in enumerate(JOINTS)}
NORM_MODES = {j: NormMode.RANGE_0_100 if j == "gripper" else NormMode.DEGREES for j in JOINTS}
# wrist_roll turns freely: calibration gives it the whole turn instead of a recorded range.
FULL_TURN_JOINTS = ("wrist_roll",)
MODELS = ("so100", "so101")
DEFAULT_CALIBRATION_ROOT = Path("~/.cache/smolvla/calibration").expanduser()
# Follower position-loop gains and acceleration, LeRobot's SO follower settings (P 16 instead of the
# factory 32 avoids shakiness).
FOLLOWER_SETTINGS = {"Return_Delay_Time": 0, "Maximum_Acceleration": 254, "Acceleration": 254,
                     "Operating_Mode": 0, "P_Coefficient": 16, "I_Coefficient": 0, "D_Coefficient": 32}  # fmt: skip


class _SOArm:
    role = ""
    joint_names = JOINTS

    def __init__(
        self,
        port: str | Port,
        arm_id: str,
        calibration_dir: str | Path | None = None,
        model: str = "so101",
        *,
        calibration: dict[str, MotorCalibration] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = 3,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
        if not arm_id or "/" in arm_id or arm_id.startswith("."):
            raise ValueError(f"arm_id must be a plain name (it names the calibration file), got {arm_id!r}")
        self.arm_id, self.model = arm_id, model
        root = DEFAULT_CALIBRATION_ROOT / f"{model}_{self.role}" if calibration_dir is None else Path(calibration_dir)
        self.calibration_file = root / f"{arm_id}.json"
        if calibration is None and self.calibration_file.exists():
            calibration = cal.load(self.calibration_file, IDS)
        self.calibration = calibration
        self.bus = FeetechBus(port, IDS, timeout_s=timeout_s, retries=retries)
        self._exit_stack = contextlib.ExitStack()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model}, id={self.arm_id!r})"

    # -- connection ---------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the bus, check the six servos answer as STS3215s, write the calibration, configure."""
        self.bus.open()
        missing, wrong = [], {}
        for joint, servo_id in IDS.items():
            try:
                model_number = self.bus.ping(servo_id)
            except proto.CommunicationError:
                missing.append(f"{joint} (id {servo_id})")
                continue
            if model_number != MODEL_NUMBER_STS3215:
                wrong[joint] = model_number
        if missing or wrong:
            self.bus.close()
            raise ConnectionError(
                f"{self}: servos not answering: {missing or 'none'}; wrong model numbers (expected "
                f"{MODEL_NUMBER_STS3215}): {wrong or 'none'}. Check power, wiring and `smolvla robot setup-motors`."
            )
        try:
            self.bus.torque(False)
            if self.calibration is not None:
                self._write_calibration(self.calibration)
            self._configure()
        except BaseException:
            self.disconnect()  # never leave a half-configured arm holding torque
            raise

    def disconnect(self) -> None:
        """Release torque and close the bus (a bus error while releasing is logged, then the port closes)."""
        if not self.bus.is_open:
            return
        try:
            self.bus.torque(False)
        except proto.FeetechError as e:
            log.error("%s: could not release torque on disconnect: %s", self, e)
        finally:
            self.bus.close()

    def __enter__(self):
        self.connect()
        self._exit_stack.enter_context(torque_released_on_exit(self.disconnect))
        return self

    def __exit__(self, *exc) -> bool:
        return self._exit_stack.__exit__(*exc)

    def _configure(self) -> None:
        pass

    # -- joints -------------------------------------------------------------------------------------
    def read_joints(self) -> dict[str, float]:
        """Present positions, joint -> calibrated units (raw ticks when uncalibrated)."""
        raw = self.bus.sync_read("Present_Position")
        if self.calibration is None:
            return {j: float(v) for j, v in raw.items()}
        return {j: cal.to_units(v, self.calibration[j], NORM_MODES[j]) for j, v in raw.items()}

    def limits(self) -> dict[str, tuple[float, float]]:
        """Joint limits in the units of `read_joints`: the recorded range of motion, or the whole turn."""
        if self.calibration is None:
            return {j: (0.0, float(MAX_TICK)) for j in JOINTS}
        return {j: cal.unit_limits(self.calibration[j], NORM_MODES[j]) for j in JOINTS}

    def torque(self, enabled: bool) -> None:
        self.bus.torque(enabled)

    # -- calibration --------------------------------------------------------------------------------
    def calibrate_interactive(
        self, input_fn: Callable[[str], object] = input, poll_s: float = 0.02
    ) -> dict[str, MotorCalibration]:
        """Homing (middle of the range = half a turn), then the range of motion recorded while a hand moves
        every joint; written to the servos and saved at `calibration_file`.

        `input_fn(prompt)` returns when the operator is ready (ENTER); the positions are polled from another
        thread while the second prompt waits.
        """
        self.bus.torque(False)
        for joint in JOINTS:
            self.bus.write("Operating_Mode", joint, 0)
        input_fn(f"Move {self} to the middle of its range of motion and press ENTER...")
        for joint in JOINTS:  # read positions without any offset first
            self.bus.write("Homing_Offset", joint, 0)
            self.bus.write("Min_Position_Limit", joint, 0)
            self.bus.write("Max_Position_Limit", joint, MAX_TICK)
        present = self.bus.sync_read("Present_Position")
        offsets = {j: cal.half_turn_homing(p) for j, p in present.items()}
        for joint, offset in offsets.items():
            self.bus.write("Homing_Offset", joint, offset)
        mins, maxes = self._record_ranges(input_fn, poll_s)
        for joint in FULL_TURN_JOINTS:
            mins[joint], maxes[joint] = 0, MAX_TICK
        calibration = cal.from_recording(IDS, offsets, mins, maxes)
        self._write_calibration(calibration)
        cal.save(calibration, self.calibration_file)
        log.info("%s: calibration saved to %s", self, self.calibration_file)
        self.calibration = calibration
        return calibration

    def _record_ranges(self, input_fn: Callable[[str], object], poll_s: float) -> tuple[dict, dict]:
        first = self.bus.sync_read("Present_Position")
        mins, maxes = dict(first), dict(first)
        done = threading.Event()
        errors: list[BaseException] = []

        def poll() -> None:
            while not done.is_set():
                try:
                    for joint, value in self.bus.sync_read("Present_Position").items():
                        mins[joint], maxes[joint] = min(mins[joint], value), max(maxes[joint], value)
                except proto.FeetechError as e:
                    errors.append(e)
                    return
                time.sleep(poll_s)

        thread = threading.Thread(target=poll, name="record-ranges", daemon=True)
        thread.start()
        try:
            moving = [j for j in JOINTS if j not in FULL_TURN_JOINTS]
            input_fn(f"Move {', '.join(moving)} through their entire ranges of motion, then press ENTER...")
        finally:
            done.set()
            thread.join()
        if errors:
            raise errors[0]
        return mins, maxes

    def _write_calibration(self, calibration: dict[str, MotorCalibration]) -> None:
        """Put homing offsets and limits into the servos' EEPROM, only where they differ (EEPROM wears)."""
        for joint, c in calibration.items():
            for name, value in (("Homing_Offset", c.homing_offset), ("Min_Position_Limit", c.range_min),
                                ("Max_Position_Limit", c.range_max)):  # fmt: skip
                if self.bus.read(name, joint) != value:
                    self.bus.write(name, joint, value)

    # -- motor set-up -------------------------------------------------------------------------------
    def setup_motor(self, joint: str, current_id: int | None = None) -> None:
        """Give the only servo on the bus the id of `joint` and 1 Mbaud.

        Plug in one servo at a time (LeRobot's order is gripper first). Without `current_id` the servo is
        found at whatever id and baud rate it has; a bus with none or several servos is refused, naming
        the ids found.
        """
        if joint not in IDS:
            raise ValueError(f"unknown joint {joint!r}; expected one of {list(JOINTS)}")
        if current_id is None:
            rate, ids = self.bus.find_servos()
            if len(ids) != 1:
                raise ValueError(f"{self}: connect only the {joint} servo for set-up; found servos with ids {ids}")
            (current,) = ids
        else:
            self.bus.open()
            rate, current = self.bus.baudrate, current_id
        model_number = self.bus.ping(current)
        if model_number != MODEL_NUMBER_STS3215:
            raise ValueError(f"servo {current} has model number {model_number}, expected {MODEL_NUMBER_STS3215}")
        if current != IDS[joint]:
            self.bus.set_id(current, IDS[joint])
        if rate != DEFAULT_BAUDRATE:
            self.bus.set_baudrate(IDS[joint], DEFAULT_BAUDRATE)
            self.bus.use_baudrate(DEFAULT_BAUDRATE)
            self.bus.ping(IDS[joint])
        log.info("%s: %s is servo id %d at %d baud (was id %d at %d)", self, joint, IDS[joint], DEFAULT_BAUDRATE,
                 current, rate)  # fmt: skip


class SOFollower(_SOArm):
    """The arm that moves: torque on after `connect()`; goals pass through the safety clamps.

    `watchdog_s`: when no goal arrives for that long, the arm holds its present position (re-commands it).
    """

    role = "follower"

    def __init__(
        self,
        port: str | Port,
        arm_id: str,
        calibration_dir: str | Path | None = None,
        model: str = "so101",
        max_relative_target: float | dict[str, float] | None = None,
        *,
        watchdog_s: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(port, arm_id, calibration_dir, model, **kwargs)
        validate_max_relative_target(max_relative_target, JOINTS)
        self.max_relative_target = max_relative_target
        self.watchdog = Watchdog(watchdog_s, self.hold) if watchdog_s is not None else None

    def _configure(self) -> None:
        for joint in JOINTS:
            for name, value in FOLLOWER_SETTINGS.items():
                self.bus.write(name, joint, value)
        self.bus.torque(True)
        if self.watchdog is not None:
            self.watchdog.start()

    def disconnect(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        super().disconnect()

    def send_goal(self, goal: dict[str, float]) -> dict[str, float]:
        """Command joint positions (units of `read_joints`; a subset of joints is fine).

        Returns the goal actually sent, after the limit and `max_relative_target` clamps. Raises
        `UnsafeGoalError` (nothing sent) on a non-finite value.
        """
        present = self.read_joints() if self.max_relative_target is not None else None
        safe = clamp_goal(goal, self.limits(), present, self.max_relative_target)
        self._write_goal(safe)
        if self.watchdog is not None:
            self.watchdog.kick()
        return safe

    def hold(self) -> None:
        """Stop where the arm is: its present position becomes its goal."""
        self.bus.sync_write("Goal_Position", self.bus.sync_read("Present_Position"))

    def _write_goal(self, goal: dict[str, float]) -> None:
        if self.calibration is None:
            ticks = {j: round(v) for j, v in goal.items()}
        else:
            ticks = {j: cal.to_ticks(v, self.calibration[j], NORM_MODES[j]) for j, v in goal.items()}
        self.bus.sync_write("Goal_Position", ticks)


class SOLeader(_SOArm):
    """The arm a hand moves for teleoperation: torque stays off; read it with `read_joints()`."""

    role = "leader"
