"""A simulated Feetech bus on a pseudo-terminal: servos 1-6 (model 777) answering the protocol byte for byte.

`SimBusServer(link_path).start()` opens a pty, symlinks its device at `link_path` and serves from a thread,
so any client, ours or LeRobot's, opens `link_path` like a USB serial adapter (the baud rate is ignored).
The follower's joints move toward their goals (a first-order servo model, or the MuJoCo SO-101 with
`physics="mujoco"`); the leader variant's joints follow a scripted trajectory, as if moved by hand.

    python -m smolvla.robots.sim_bus --link /tmp/so101 [--leader]   # prints the link when ready

Tests reach the servos through `server.arm` (`move_by_hand`, `servos[i].error`, register peeks) and can make
the next status packets corrupt or missing (`corrupt_next`, `drop_next`) to exercise the bus's retries.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import threading
import tty
from pathlib import Path

from smolvla.robots.feetech import protocol as proto
from smolvla.robots.sim_servo import KinematicJoints, ScriptedJoints, SimArm

log = logging.getLogger(__name__)

N_SERVOS = 6


def _make_joints(leader: bool, physics: str):
    if leader:
        return ScriptedJoints(N_SERVOS)
    if physics == "mujoco":
        from smolvla.robots.sim_mujoco import MujocoJoints

        return MujocoJoints()
    if physics != "kinematic":
        raise ValueError(f"physics must be 'kinematic' or 'mujoco', got {physics!r}")
    return KinematicJoints(N_SERVOS)


class SimBusServer:
    """Serves a `SimArm` on a pty symlinked at `link_path` until `stop()`."""

    def __init__(self, link_path: str | Path, leader: bool = False, physics: str = "kinematic") -> None:
        self.link_path = Path(link_path)
        self.leader = leader
        self.arm = SimArm(_make_joints(leader, physics), N_SERVOS)
        self.corrupt_next = 0  # flip the checksum of this many coming status packets
        self.drop_next = 0  # swallow this many coming status packets
        self.packets_served = 0
        self._master = self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> SimBusServer:
        if self.link_path.exists() and not self.link_path.is_symlink():
            raise FileExistsError(f"{self.link_path} exists and is not a symlink; refusing to replace it")
        self._master, self._slave = os.openpty()
        # Raw mode: no echo, no newline translation, no flow-control bytes eaten (0x11/0x13 are data here).
        tty.setraw(self._slave)
        tmp = self.link_path.with_name(self.link_path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self._slave))
        os.replace(tmp, self.link_path)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="sim-bus", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.link_path.is_symlink():
            self.link_path.unlink()
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> SimBusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            self.arm.update()
            if not ready:
                continue
            try:
                buf += os.read(self._master, 4096)
            except OSError:  # the pty went away under us (stop() from another thread)
                return
            while True:
                packet, consumed = proto.find_packet(buf)
                del buf[:consumed]
                if packet is None:
                    break
                try:
                    reply = self.handle(packet)
                except ValueError as e:  # e.g. an address past the table: a real servo stays silent
                    log.warning("sim bus: ignoring %s: %s", packet, e)
                    continue
                if reply:
                    os.write(self._master, reply)

    def handle(self, packet: proto.Packet) -> bytes:
        """The bytes the servos put on the wire in answer to one instruction packet."""
        self.packets_served += 1
        with self.arm.lock:
            self.arm.update()
            if packet.servo_id == proto.BROADCAST_ID:
                return self._broadcast(packet)
            servo = self.arm.by_id(packet.servo_id)
            if servo is None:
                return b""  # nobody at that id: silence, as on a real bus
            code, p = packet.code, packet.params
            if code == proto.Instruction.PING:
                return self._status(servo.id, servo.error)
            if code == proto.Instruction.READ and len(p) == 2:
                return self._status(servo.id, servo.error, servo.read(p[0], p[1]))
            if code == proto.Instruction.WRITE and len(p) >= 2:
                servo.write(p[0], p[1:])
                return self._status(packet.servo_id, servo.error)
            log.warning("sim bus: ignoring instruction 0x%02X with %d parameter bytes", code, len(p))
            return b""

    def _broadcast(self, packet: proto.Packet) -> bytes:
        code, p = packet.code, packet.params
        if code == proto.Instruction.PING:
            servos = sorted((s for s in self.arm.servos if s.connected), key=lambda s: s.id)
            return b"".join(self._status(s.id, s.error) for s in servos)
        if code == proto.Instruction.SYNC_READ and len(p) >= 2:
            address, length = p[0], p[1]
            servos = [self.arm.by_id(i) for i in p[2:]]
            return b"".join(self._status(s.id, s.error, s.read(address, length)) for s in servos if s)
        if code == proto.Instruction.SYNC_WRITE and len(p) >= 2:
            address, length = p[0], p[1]
            for k in range(2, len(p) - length, length + 1):
                servo = self.arm.by_id(p[k])
                if servo is not None:
                    servo.write(address, p[k + 1 : k + 1 + length])
            return b""
        log.warning("sim bus: ignoring broadcast instruction 0x%02X", code)
        return b""

    def _status(self, servo_id: int, error: int, params: bytes = b"") -> bytes:
        frame = proto.build_packet(servo_id, error, params)
        if self.drop_next > 0:
            self.drop_next -= 1
            return b""
        if self.corrupt_next > 0:
            self.corrupt_next -= 1
            return frame[:-1] + bytes([frame[-1] ^ 0xFF])
        return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smolvla.robots.sim_bus", description=__doc__.split("\n")[0])
    parser.add_argument("--link", required=True, help="path of the symlink to the simulated serial port")
    parser.add_argument("--leader", action="store_true", help="a leader arm whose joints follow a script")
    parser.add_argument("--physics", choices=["kinematic", "mujoco"], default="kinematic")
    args = parser.parse_args(argv)
    server = SimBusServer(args.link, leader=args.leader, physics=args.physics)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    try:
        print(server.link_path, flush=True)  # the "ready" line scripts wait for
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
