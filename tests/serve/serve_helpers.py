"""Shared pieces of the socket tests: a scripted policy following the policy contract, raw-protocol helpers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import torch
from websockets.asyncio.client import connect

from smolvla.serve.codec import pack, unpack
from smolvla.serve.protocol import SERVER_TO_CLIENT, Hello, Observation, parse
from smolvla.serve.robot import ReachingRobot, reaching_expert_chunk
from smolvla.types import OBS_STATE

CAM = ReachingRobot.CAMERA


@dataclass(frozen=True)
class ScriptedConfig:
    camera_keys: tuple[str, ...] = (CAM,)
    state_dim: int = 8
    action_dim: int = 4
    chunk_size: int = 20
    n_action_steps: int = 10


class ScriptedPolicy:
    """Follows the policy contract (`config`, `predict_action_chunk(batch)`) with the reaching planner,
    so a ReachingRobot driven through the server really reaches its goal. Records each batch size."""

    def __init__(self, config: ScriptedConfig | None = None, max_step: float = 0.04, delay_s: float = 0.0) -> None:
        self.config = config or ScriptedConfig()
        self.max_step, self.delay_s = max_step, delay_s
        self.batch_sizes: list[int] = []

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        state = batch[OBS_STATE].numpy()
        for key in self.config.camera_keys:
            image = batch[key]
            assert image.dtype == torch.float32 and image.shape[1] == 3 and 0.0 <= float(image.min()) <= 1.0
        self.batch_sizes.append(state.shape[0])
        if self.delay_s:
            time.sleep(self.delay_s)
        chunks = [reaching_expert_chunk(s, self.config.chunk_size, self.max_step) for s in state]
        return torch.from_numpy(np.stack(chunks))


def run(coro, timeout: float = 15.0):
    """Run one async test body with a hard time bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def robot_hello(robot: ReachingRobot, **kw) -> Hello:
    base = dict(
        camera_keys=tuple(robot.camera_shapes),
        image_shapes=dict(robot.camera_shapes),
        state_dim=robot.state_dim,
        action_dim=robot.action_dim,
        task="reach goal",
    )
    return Hello(**{**base, **kw})


def robot_observation(robot: ReachingRobot, obs_id: int = 1, timestep: int = 0, must_go: bool = True) -> Observation:
    raw = robot.get_observation()
    return Observation(
        obs_id=obs_id,
        episode=0,
        timestep=timestep,
        must_go=must_go,
        images={CAM: raw[CAM]},
        state=raw[OBS_STATE],
        task="reach goal",
        sent_at=time.monotonic(),
    )


async def raw_session(port: int, hello: Hello, scheme: str = "ws", ssl=None):
    """Open a connection, send `hello`, return (websocket, first reply message)."""
    ws = await connect(f"{scheme}://127.0.0.1:{port}", proxy=None, ssl=ssl, max_size=None, open_timeout=5)
    await ws.send(pack(hello.to_wire()))
    reply = parse(unpack(await asyncio.wait_for(ws.recv(), 5)), SERVER_TO_CLIENT)
    return ws, reply


async def recv_message(ws, timeout: float = 5.0):
    return parse(unpack(await asyncio.wait_for(ws.recv(), timeout)), SERVER_TO_CLIENT)
