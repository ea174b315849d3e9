"""A live rerun view of a running robot client (`smolvla deploy --viz`): cameras, joints, actions, queue, latency.

    observation.images.<name>      each observation sent to the server (rr.Image)
    observation.state              the joints at that moment (one line per joint)
    action                         every action executed (a hold logs nothing; see client/hold)
    client/queue                   actions queued, sampled every tick
    client/hold                    1 on a tick that held (empty queue), 0 otherwise
    client/latency_s               observation sent -> chunk received, per chunk

on a `tick` sequence timeline. Images are logged only when an observation is sent (a few per second in
async mode).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smolvla.types import OBS_IMAGES_PREFIX, OBS_STATE

# Items waiting for the logging thread; beyond this the view drops items rather than slow the loop.
QUEUE_SIZE = 256


class LiveView:
    """A rerun recording fed by `SOArmRobot` and the deploy loop; `save` writes an .rrd file instead of a viewer.

    The control loop only puts tuples on a queue; a daemon thread does the logging (rerun's Python calls take
    about a millisecond each, too long for a 30 Hz tick). Vectors are one entity each (one line per joint).
    """

    def __init__(self, joints: Sequence[str], save: str | Path | None = None) -> None:
        import rerun as rr

        self.rr, self.joints, self.tick = rr, tuple(joints), 0
        self.recording = rr.RecordingStream("smolvla_deploy")
        if save is not None:
            self.recording.save(str(save))
        else:
            self.recording.spawn()
        for entity in (OBS_STATE, "action"):
            self.recording.log(entity, rr.SeriesLines(names=list(self.joints)), static=True)
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()

    def _put(self, item: tuple) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # the view fell behind: drop, never block the control loop
            pass

    def _run(self) -> None:
        rr, rec = self.rr, self.recording
        while (item := self._queue.get()) is not None:
            kind, tick, payload = item
            rec.set_time("tick", sequence=tick)
            if kind == "observation":
                for key, value in payload.items():
                    if key.startswith(OBS_IMAGES_PREFIX):
                        rec.log(key, rr.Image(value))
                rec.log(OBS_STATE, rr.Scalars(np.asarray(payload[OBS_STATE], np.float64)))
            elif kind == "tick":
                action, queue_length = payload
                if action is not None:
                    rec.log("action", rr.Scalars(np.asarray(action, np.float64)))
                rec.log("client/hold", rr.Scalars(float(action is None)))
                rec.log("client/queue", rr.Scalars(float(queue_length)))
            else:
                rec.log("client/latency_s", rr.Scalars(payload))

    def observation(self, obs: dict[str, Any]) -> None:
        self._put(("observation", self.tick, obs))

    def control_tick(self, action: np.ndarray | None, queue_length: int) -> None:
        """One control tick: the action executed (None for a hold) and the queue length after it."""
        self.tick += 1
        self._put(("tick", self.tick, (None if action is None else np.array(action), queue_length)))

    def latency(self, seconds: float) -> None:
        self._put(("latency", self.tick, float(seconds)))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self.recording.flush()
        self.recording.disconnect()
