"""`smolvla robot ...` (arms: ports, calibration, motors, teleop, read, move, simulated bus) and the session
commands `smolvla record`, `replay`, `deploy`, `viz`. See docs/robots.md.

Torch-free: the robot side runs on a small computer with the `client` + `robots` extras (a test runs these
commands with torch imports blocked).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import ExitStack
from pathlib import Path

import typer

from smolvla.cli.choices import choice_option
from smolvla.serve.action_queue import AGGREGATORS

robot_app = typer.Typer(no_args_is_help=True, help="SO-100 / SO-101 arms: set-up, calibration, teleop, I/O.")
ROBOTS = ("so100_follower", "so101_follower", "so100_leader", "so101_leader")
FOLLOWERS = ("so100_follower", "so101_follower")
MODELS = ("so100", "so101")
CODECS = ("libsvtav1", "h264")


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.add_typer(robot_app, name="robot")
    for command in (record, replay, deploy, viz):
        app.command()(command)


def _log(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _arm(robot: str, port: str, arm_id: str, calibration_dir: Path | None, **kwargs):
    """The arm `robot` names ("so101_follower", ...), not connected."""
    from smolvla.robots.so_arm import SOFollower, SOLeader

    model, role = robot.split("_")
    cls = SOFollower if role == "follower" else SOLeader
    return cls(port, arm_id, calibration_dir, model=model, **kwargs)


def _cameras(specs: list[str] | None, fps: float) -> list:
    from smolvla.robots.cameras_spec import make_camera, parse_cameras

    return [make_camera(spec, fps) for spec in parse_cameras(specs)]


def _connect_all(stack: ExitStack, *devices) -> None:
    """Connect arms and cameras; each is released (torque off, camera closed) when `stack` closes."""
    for device in devices:
        stack.enter_context(device)


def _json(obj) -> None:
    typer.echo(json.dumps(obj))


# Shared options.
PORT = typer.Option(..., "--port", help="Serial port of the arm's bus adapter (see `smolvla robot find-port`).")
ARM_ID = typer.Option("default", "--id", help="Arm id: names its calibration file <calibration-dir>/<id>.json.")
CAL_DIR = typer.Option(None, help="Calibration directory (default ~/.cache/smolvla/calibration/<robot>).")
CAMERA = typer.Option(None, "--camera", help="NAME=SOURCE[:WxH][@FPS], repeatable: top=0:640x480@30, top=fake.")
MAX_REL = typer.Option(None, help="Largest change of any joint goal per command (degrees / gripper %).")


# -- smolvla robot ... -------------------------------------------------------------------------------


@robot_app.command("find-port")
def find_port(list_only: bool = typer.Option(False, "--list", help="Only print the serial ports (JSON).")) -> None:
    """Find an arm's port: lists ports, asks you to unplug the arm, and names the port that went away."""
    from serial.tools import list_ports

    ports = lambda: sorted(p.device for p in list_ports.comports())
    before = ports()
    if list_only:
        return _json(before)
    typer.echo(f"ports: {before}")
    input("Unplug the arm's USB cable, then press ENTER... ")
    gone = sorted(set(before) - set(ports()))
    if len(gone) != 1:
        raise ValueError(f"expected exactly one port to disappear, got {gone or 'none'}; try again")
    typer.echo(f"the arm's port is {gone[0]}; plug the cable back in")


@robot_app.command()
def calibrate(
    port: str = PORT,
    robot: str = choice_option("so101_follower", ROBOTS, help="Which arm."),
    arm_id: str = ARM_ID,
    calibration_dir: Path | None = CAL_DIR,
    import_lerobot: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Import this LeRobot file."),
) -> None:
    """Record homing offsets and ranges of motion (interactive), or import a LeRobot calibration file."""
    _log()
    arm = _arm(robot, port, arm_id, calibration_dir)
    if import_lerobot is not None:
        from smolvla.robots import calibration as cal
        from smolvla.robots.so_arm import IDS

        return typer.echo(f"calibration saved to {cal.import_lerobot(import_lerobot, arm.calibration_file, IDS)}")
    arm.calibration = None  # a new calibration starts from raw positions
    with arm:
        arm.calibrate_interactive()
    typer.echo(f"calibration saved to {arm.calibration_file}")


@robot_app.command("setup-motors")
def setup_motors(
    port: str = PORT,
    robot: str = choice_option("so101_follower", ROBOTS, help="Which arm."),
    current_id: int | None = typer.Option(None, help="Id the servos answer at now (default: found on the bus)."),
) -> None:
    """Give each servo its joint's id (1-6) and 1 Mbaud, one servo connected at a time, gripper first."""
    _log()
    from smolvla.robots.so_arm import IDS

    arm = _arm(robot, port, "setup", None)
    try:
        for joint in reversed(IDS):
            input(f"Connect ONLY the {joint} servo to the bus, then press ENTER... ")
            arm.setup_motor(joint, current_id)
            typer.echo(f"{joint}: id {IDS[joint]}")
    finally:
        arm.bus.close()


@robot_app.command()
def release(port: str = PORT) -> None:
    """Switch torque off on all six servos (an arm left holding after a crash or a killed process)."""
    from smolvla.robots.feetech.bus import FeetechBus
    from smolvla.robots.so_arm import IDS

    bus = FeetechBus(port, IDS)
    bus.open()
    try:
        bus.torque(False)
    finally:
        bus.close()
    typer.echo("torque released")


@robot_app.command()
def read(
    port: str = PORT,
    robot: str = choice_option("so101_follower", ROBOTS, help="Which arm."),
    calibration: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Convert with this file."),
) -> None:
    """Print one JSON line: joint -> present position (raw ticks; calibrated units with --calibration).

    Passive: opens the bus and reads, never changes torque or registers.
    """
    from smolvla.robots.arm_io import read_positions

    _json(read_positions(port, calibration))


@robot_app.command()
def move(
    port: str = PORT,
    goal: str = typer.Option(..., help="JSON object joint -> goal, e.g. '{\"shoulder_pan\": 2048}'."),
    raw: bool = typer.Option(False, help="Goals in raw ticks (0-4095), ignoring any calibration."),
    robot: str = choice_option("so101_follower", FOLLOWERS, help="Which arm."),
    arm_id: str = ARM_ID,
    calibration_dir: Path | None = CAL_DIR,
    tolerance: float | None = typer.Option(None, help="Arrived within this (default 20 ticks / 2 units)."),
    timeout_s: float = typer.Option(5.0, help="Give up waiting after this long (error)."),
    max_relative_target: float | None = MAX_REL,
) -> None:
    """Move the follower to GOAL, wait until it is there, print the final positions as JSON.

    Torque is released when the command ends (the arm goes limp): hold it or rest it first.
    """
    from smolvla.robots.arm_io import move_and_wait, parse_goal

    targets = parse_goal(goal)
    arm = _arm(robot, port, arm_id, calibration_dir, max_relative_target=max_relative_target)
    if raw:
        arm.calibration = None
    elif arm.calibration is None:
        raise ValueError(f"no calibration at {arm.calibration_file}; run `smolvla robot calibrate` or pass --raw")
    with arm:
        _json(move_and_wait(arm, targets, tolerance or (20.0 if raw else 2.0), timeout_s))


@robot_app.command()
def teleop(
    leader_port: str = typer.Option(..., help="Serial port of the leader arm."),
    follower_port: str = typer.Option(..., help="Serial port of the follower arm."),
    leader_id: str = typer.Option("default", help="Leader arm id (calibration file name)."),
    follower_id: str = typer.Option("default", help="Follower arm id (calibration file name)."),
    model: str = choice_option("so101", MODELS, help="Arm model."),
    calibration_dir: Path | None = CAL_DIR,
    fps: float = typer.Option(60.0, help="Control rate (Hz)."),
    seconds: float = typer.Option(0.0, help="Stop after this long (0: until Ctrl-C)."),
    max_relative_target: float | None = MAX_REL,
    camera: list[str] | None = CAMERA,
    viz: bool = typer.Option(False, help="Preview cameras, joints and goals live in rerun (the viz extra)."),
    viz_save: Path | None = typer.Option(None, help="Record that preview to an .rrd file instead."),
) -> None:
    """Leader -> follower at FPS; prints the rate held (JSON) every 5 s and at the end.

    Cameras given with --camera are read alongside and their delivered fps reported; --viz shows them.
    """
    _log()
    from smolvla.robots.arm_io import teleoperate

    leader = _arm(f"{model}_leader", leader_port, leader_id, calibration_dir)
    follower = _arm(f"{model}_follower", follower_port, follower_id, calibration_dir,
                    max_relative_target=max_relative_target)  # fmt: skip
    cams = _cameras(camera, fps)
    with ExitStack() as stack:
        _connect_all(stack, follower, leader, *cams)
        view = None
        if viz or viz_save is not None:
            from smolvla.robots.viz_live import LiveView

            view = LiveView(follower.joint_names, viz_save)
            stack.callback(view.close)
        try:
            summary = teleoperate(leader, follower, fps, seconds, cams, report=_json, view=view)
        except KeyboardInterrupt:
            summary = None
    if summary is not None:
        _json(summary)


@robot_app.command("sim-bus")
def sim_bus(
    link: Path = typer.Option(..., help="Path of the symlink to create for the simulated serial port."),
    leader: bool = typer.Option(False, help="A leader arm (joints follow a script, as if moved by hand)."),
    physics: str = choice_option("kinematic", ("kinematic", "mujoco"), help="Follower joint model."),
) -> None:
    """Serve six simulated STS3215 servos on a pseudo-terminal at LINK; prints LINK when ready."""
    from smolvla.robots.sim_bus import main

    raise typer.Exit(main(["--link", str(link), "--physics", physics] + (["--leader"] if leader else [])))


# -- session commands --------------------------------------------------------------------------------


def record(
    root: Path = typer.Option(..., help="Dataset directory (created; with --resume, appended to)."),
    task: str = typer.Option(..., help="What the episodes show, e.g. 'pick up the cube'."),
    robot_port: str = typer.Option(..., help="Serial port of the follower arm."),
    teleop_port: str = typer.Option(..., help="Serial port of the leader arm."),
    robot_id: str = typer.Option("default", help="Follower arm id."),
    teleop_id: str = typer.Option("default", help="Leader arm id."),
    model: str = choice_option("so101", MODELS, help="Arm model."),
    calibration_dir: Path | None = CAL_DIR,
    camera: list[str] | None = CAMERA,
    fps: int = typer.Option(30, help="Frames per second (the dataset's fps)."),
    episodes: int = typer.Option(1, help="Episodes to record in this session."),
    episode_time_s: float = typer.Option(60.0, help="Longest episode (s); type n+Enter to end one sooner."),
    reset_time_s: float = typer.Option(10.0, help="Reset period between episodes (s)."),
    resume: bool = typer.Option(False, help="Append to the dataset at --root."),
    video_codec: str = choice_option("libsvtav1", CODECS, help="Camera stream encoder (h264 is faster)."),
    max_relative_target: float | None = MAX_REL,
) -> None:
    """Record teleoperated episodes as a LeRobot v3.0 dataset (keys: Enter/n next, r re-record, q stop).

    Prints one JSON line per episode (frames, rate held) and a last one with the episodes saved.
    """
    _log()
    from smolvla.robots.record import RecordConfig, Recorder
    from smolvla.robots.record_controls import HELP, Controls

    cfg = RecordConfig(
        root, task, fps, episodes, episode_time_s, reset_time_s, resume, f"{model}_follower", video_codec
    )
    leader = _arm(f"{model}_leader", teleop_port, teleop_id, calibration_dir)
    follower = _arm(f"{model}_follower", robot_port, robot_id, calibration_dir,
                    max_relative_target=max_relative_target)  # fmt: skip
    cams = _cameras(camera, fps)
    with ExitStack() as stack:
        _connect_all(stack, follower, leader, *cams)
        controls = Controls()
        controls.listen()
        typer.echo(HELP, err=True)
        report = Recorder(cfg, follower, leader, cams, controls, lambda t: typer.echo(t, err=True)).run()
    for number, episode in enumerate(report.episodes):
        _json({"episode": number, **episode})
    _json({"saved": report.saved, "rerecorded": report.rerecorded, "root": str(root)})


def replay(
    root: Path = typer.Option(..., exists=True, file_okay=False, help="LeRobot v3.0 dataset directory."),
    episode: int = typer.Option(0, help="Episode index."),
    robot_port: str = typer.Option(..., help="Serial port of the follower arm."),
    robot_id: str = typer.Option("default", help="Follower arm id."),
    model: str = choice_option("so101", MODELS, help="Arm model."),
    calibration_dir: Path | None = CAL_DIR,
    max_relative_target: float | None = MAX_REL,
) -> None:
    """Send the recorded actions of EPISODE to the follower at the dataset's fps; prints the rate held."""
    _log()
    from smolvla.robots.replay import episode_actions
    from smolvla.robots.replay import replay as run_replay

    fps, joints, actions = episode_actions(root, episode)
    follower = _arm(f"{model}_follower", robot_port, robot_id, calibration_dir,
                    max_relative_target=max_relative_target)  # fmt: skip
    with follower:
        summary = run_replay(follower, joints, actions, fps)
    _json({"episode": episode, "frames": len(actions), **summary})


def deploy(
    uri: str = typer.Option("ws://127.0.0.1:8765", help="Policy server (`smolvla serve`), ws:// or wss://."),
    task: str = typer.Option(..., help="Task instruction for the policy."),
    robot_port: str = typer.Option(..., help="Serial port of the follower arm."),
    robot_id: str = typer.Option("default", help="Follower arm id."),
    model: str = choice_option("so101", MODELS, help="Arm model."),
    calibration_dir: Path | None = CAL_DIR,
    camera: list[str] | None = CAMERA,
    mode: str = choice_option("async", ("async", "sync"), help="async (overlap inference) or sync."),
    fps: float = typer.Option(30.0, help="Control ticks per second."),
    g: float = typer.Option(0.7, help="Send an observation when the queue holds <= g * chunk_size actions."),
    aggregate: str = choice_option("weighted", tuple(AGGREGATORS), help="How overlapping chunks merge."),
    episodes: int = typer.Option(1, help="Episodes to run."),
    max_seconds: float = typer.Option(30.0, help="Length of each episode (s)."),
    max_relative_target: float | None = MAX_REL,
    watchdog_s: float = typer.Option(0.5, help="Stop the arm where it is when no goal came for this long."),
    token: str | None = typer.Option(None, envvar="SMOLVLA_TOKEN", help="Shared secret."),
    ca_file: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Certificate to trust for wss://."),
    viz: bool = typer.Option(False, help="Show cameras, joints, actions, queue and latency live in rerun."),
    viz_save: Path | None = typer.Option(None, help="Record that live view to an .rrd file instead."),
) -> None:
    """Run a policy served by `smolvla serve` on the arm; one JSON line per episode (incl. tick jitter).

    Torque is released when the command ends, on Ctrl-C and on SIGTERM. Epsilon (skip observations whose
    joint state barely moved) is the server's `--epsilon`.
    """
    _log()
    from smolvla.robots.deploy import SOArmRobot
    from smolvla.robots.deploy import deploy as run_deploy
    from smolvla.serve.client import ClientConfig

    config = ClientConfig(uri=uri, task=task, fps=fps, g=g, aggregate=aggregate, mode=mode,  # type: ignore[arg-type]
                          token=token, ca_file=str(ca_file) if ca_file else None, client_name="so-arm")  # fmt: skip
    follower = _arm(f"{model}_follower", robot_port, robot_id, calibration_dir,
                    max_relative_target=max_relative_target, watchdog_s=watchdog_s)  # fmt: skip
    cams = _cameras(camera, fps)
    with ExitStack() as stack:
        _connect_all(stack, follower, *cams)
        robot = SOArmRobot(follower, cams, task)
        if viz or viz_save is not None:
            from smolvla.robots.viz_live import LiveView

            robot.view = LiveView(robot.joints, viz_save)
            stack.callback(robot.view.close)
        summaries = run_deploy(robot, config, episodes, max_seconds)
    for summary in summaries:
        _json(summary)


def viz(
    root: Path = typer.Argument(..., exists=True, file_okay=False, help="LeRobot v3.0 dataset directory."),
    episode: int = typer.Option(0, help="Episode index."),
    save: Path | None = typer.Option(None, help="Write an .rrd file instead of spawning the rerun viewer."),
) -> None:
    """Show an episode (cameras, state, action) in the rerun viewer (needs the `viz` extra)."""
    from smolvla.robots.viz import visualize

    started = time.monotonic()
    frames = visualize(root, episode, save)
    _json({"episode": episode, "frames": frames, "save": str(save) if save else None,
           "seconds": round(time.monotonic() - started, 2)})  # fmt: skip
