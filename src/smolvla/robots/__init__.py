"""Real SO-100 / SO-101 arms on a Feetech STS3215 servo bus; torch-free (the `client` + `robots` extras).

Layout (one concept per file):
- `feetech/protocol.py`: packet build/parse, checksum, instructions, status-error names.
- `feetech/control_table.py`: the STS3215 register map (address, size, signed bit).
- `feetech/encoding.py`: sign-magnitude encodings (bit 15 position/velocity, bit 11 homing offset).
- `feetech/bus.py`: `FeetechBus(port, motors)` over pyserial or any byte-stream port object: ping, read, write,
  sync read/write, retries on a corrupt or missing status packet, torque on/off, set id / baud.
- `calibration.py`: `MotorCalibration`, `ArmCalibration` (JSON per arm id; `load_lerobot_calibration`),
  raw ticks <-> degrees (5 arm joints) / 0-100 (gripper), as LeRobot's SO follower.
- `safety.py`: `SafetyGuard` (joint limits, `max_relative_target`, non-finite refusal; every refusal logged),
  `release_torque_on_exit` (context manager + SIGINT/SIGTERM handlers), `Watchdog` (holds position).
- `so_arm.py`: the arms.
- `sim_bus.py`: a simulated bus speaking the protocol byte for byte on a pseudo-terminal.

Arm API (stable; the commands, recorder and robot client build on it)::

    SOFollower(port, arm_id, calibration_dir=None, model="so101", max_relative_target=None)
    SOLeader(port, arm_id, calibration_dir=None, model="so101")
        .joint_names -> tuple[str, ...]   # shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll, gripper
        .connect() / .disconnect()        # disconnect releases torque; both arms are context managers
        .read_joints() -> dict[str, float]  # calibrated units (degrees, gripper 0-100); raw ticks if uncalibrated
        .send_goal(dict[str, float]) -> dict[str, float]  # follower only; returns the goal sent after clamps
        .torque(enabled: bool)
        .calibrate_interactive(input_fn=input) -> ArmCalibration  # homing + recorded range, saved as JSON
        .calibration -> ArmCalibration | None

`port` is a device path (opened with pyserial at 1 Mbaud) or an already open byte-stream object with
`read(n)`, `write(b)`, `reset_input_buffer()`.

Simulated bus::

    SimBusServer(link_path, leader=False).start() / .stop()   # in-process, for tests
    python -m smolvla.robots.sim_bus --link PATH [--leader]   # prints PATH when ready, serves until killed
"""
