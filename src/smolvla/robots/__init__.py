"""Real SO-100 / SO-101 arms on a Feetech STS3215 servo bus; torch-free (the `client` + `robots` extras).

Layout (one concept per file):
- `feetech/protocol.py`: packet build/parse, checksum, instructions, status-error names.
- `feetech/control_table.py`: the STS3215 register map (address, size, signed bit).
- `feetech/encoding.py`: sign-magnitude encodings (bit 15 position/velocity, bit 11 homing offset).
- `feetech/bus.py`: `FeetechBus(port, motors)` over pyserial or any byte-stream port object: ping, read, write,
  sync read/write, retries on a corrupt or missing status packet, torque on/off, set id / baud.
- `calibration.py`: `MotorCalibration` per joint, `load`/`save` (JSON per arm id, LeRobot's format),
  `import_lerobot`, raw ticks <-> degrees (5 arm joints) / 0-100 (gripper), as LeRobot's SO follower.
- `safety.py`: `clamp_goal` (joint limits, `max_relative_target`, non-finite refusal; every refusal logged),
  `torque_released_on_exit` (context manager + SIGTERM -> SystemExit), `Watchdog` (holds position).
- `so_arm.py`: the arms (`JOINTS`, `IDS`, `SOFollower`, `SOLeader`).
- `sim_servo.py`, `sim_mujoco.py`, `sim_bus.py`: a simulated bus speaking the protocol byte for byte on a
  pseudo-terminal (servo register files over a kinematic or MuJoCo joint model).

Arm API (stable; the commands, recorder and robot client build on it)::

    SOFollower(port, arm_id, calibration_dir=None, model="so101", max_relative_target=None, *,
               watchdog_s=None, calibration=None)
    SOLeader(port, arm_id, calibration_dir=None, model="so101", *, calibration=None)
        .joint_names -> tuple[str, ...]   # shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll, gripper
        .connect() / .disconnect()        # disconnect releases torque; both arms are context managers
        .read_joints() -> dict[str, float]  # calibrated units (degrees, gripper 0-100); raw ticks if uncalibrated
        .send_goal(dict[str, float]) -> dict[str, float]  # follower only; returns the goal sent after clamps
        .torque(enabled: bool)
        .calibrate_interactive(input_fn=input) -> dict[str, MotorCalibration]  # saved at .calibration_file
        .calibration -> dict[str, MotorCalibration] | None   # loaded from calibration_file if it exists
        .limits() -> dict[str, tuple[float, float]]          # in read_joints units
        .hold()                                              # follower: present position becomes the goal
        .setup_motor(joint, current_id=None)  # the one servo on the bus gets its joint's id and 1 Mbaud;
                                              # current_id=None finds it at any id and baud rate

`calibration_dir` holds `<arm_id>.json` (a LeRobot calibration directory works as is); None means
~/.cache/smolvla/calibration/<model>_<follower|leader>/. `calibration=` (e.g. `calibration.load(FILE)`)
overrides the file. `max_relative_target` is in `read_joints` units (float or per-joint dict).

`port` is a device path (opened with pyserial at 1 Mbaud) or an already open byte-stream object with
`read(n)`, `write(b)`, `reset_input_buffer()`.

Simulated bus::

    SimBusServer(link_path, leader=False).start() / .stop()   # in-process, for tests
    python -m smolvla.robots.sim_bus --link PATH [--leader] [--physics kinematic|mujoco]
        # prints PATH when ready, serves until SIGINT/SIGTERM
    server.arm.move_by_hand(servo_id, ticks); server.arm.servos[i].peek("Torque_Enable")   # test hooks
"""
