"""An in-memory SO arm with the `smolvla.robots` arm API, for recorder / replay / deploy unit tests.

The closed-loop tests use the simulated servo bus instead; this one isolates loop logic from bus timing.
"""

from __future__ import annotations

import math

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


class FakeArm:
    """Follower: `send_goal` moves the joints at once (clamped to +-`limit`). Leader: joints follow a sine."""

    def __init__(self, leader: bool = False, limit: float = 100.0) -> None:
        self.joint_names = JOINTS
        self.leader, self.limit = leader, limit
        self.positions = {j: 0.0 for j in JOINTS}
        self.goals: list[dict[str, float]] = []
        self.torque_enabled = False
        self.connected = False
        self.reads = 0

    def connect(self) -> None:
        self.connected, self.torque_enabled = True, not self.leader

    def disconnect(self) -> None:
        self.connected, self.torque_enabled = False, False

    def __enter__(self) -> FakeArm:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def torque(self, enabled: bool) -> None:
        self.torque_enabled = enabled

    def read_joints(self) -> dict[str, float]:
        self.reads += 1
        if self.leader:
            return {j: 30.0 * math.sin(self.reads / 10 + i) for i, j in enumerate(JOINTS)}
        return dict(self.positions)

    def send_goal(self, goal: dict[str, float]) -> dict[str, float]:
        sent = {j: max(-self.limit, min(self.limit, float(goal[j]))) for j in JOINTS if j in goal}
        self.positions.update(sent)
        self.goals.append(sent)
        return sent
