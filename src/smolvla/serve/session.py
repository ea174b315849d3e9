"""Per-client server state: which observations of a session are worth a forward pass. Pure logic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smolvla.serve.action_queue import should_process
from smolvla.serve.protocol import Hello, Observation


@dataclass
class Session:
    """One connected client. `last_state` float32[state_dim] is the state of the last observation sent to
    the policy; `predicted_timesteps` the timesteps already answered in the current episode."""

    session_id: str
    hello: Hello
    episode: int = -1
    last_state: np.ndarray | None = None
    predicted_timesteps: set[int] = field(default_factory=set)
    # The last task the policy was checked to accept (first the hello's, checked at the handshake): only
    # a changed task is checked again, so an unchanged one costs nothing per observation.
    accepted_task: str = ""

    def admit(self, obs: Observation, epsilon: float) -> str | None:
        """None if `obs` should go to the policy, else the reason it is skipped.

        A new episode number clears the bookkeeping (the robot was reset). Must-go observations (the
        client's queue ran empty) always pass; otherwise a timestep already answered, or a joint state
        within `epsilon` of the last processed one, is skipped: its chunk would repeat the previous one.
        """
        if obs.episode != self.episode:
            self.episode, self.last_state, self.predicted_timesteps = obs.episode, None, set()
        if obs.must_go:
            return None
        if obs.timestep in self.predicted_timesteps:
            return "duplicate_timestep"
        if not should_process(obs.state, self.last_state, False, epsilon):
            return "similar_state"
        return None

    def mark_processed(self, obs: Observation) -> None:
        """Record that `obs` is going into a forward pass (called when its batch is formed)."""
        if obs.episode != self.episode:
            return  # the client moved on to a new episode while this one waited; keep the new bookkeeping
        self.last_state = obs.state.copy()
        self.predicted_timesteps.add(obs.timestep)
