"""The client's action queue and the async-inference decisions, as pure functions (no threads, no sockets).

Timesteps count executed actions: the observation sent before executing action k is stamped k, and the
chunk the server computes from it covers timesteps k, k+1, ... By the time the chunk arrives the client
has moved on to some `next_timestep` >= k, so the head of the chunk is already in the past and dropped;
the rest overlaps the queued tail of the previous chunk and is merged by an aggregation function.

    executed: 0 1 2 ... k ... next_timestep-1 | queued: next_timestep ... k+n_old
    incoming chunk:      k ......................................... k+chunk-1
                         ^ dropped (past)         ^ aggregated (overlap) ^ appended
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

AggregateFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TimedAction:
    """One action, float32[action_dim] in raw robot units, to be executed at control step `timestep`."""

    timestep: int
    action: np.ndarray


# Aggregation of two actions planned for the same timestep: (old queued, new incoming) -> merged.
# Weights as in LeRobot's async client (weighted_average / latest_only / average / conservative).
AGGREGATORS: dict[str, AggregateFn] = {
    "weighted": lambda old, new: 0.3 * old + 0.7 * new,
    "latest": lambda old, new: new,
    "average": lambda old, new: 0.5 * old + 0.5 * new,
    "conservative": lambda old, new: 0.7 * old + 0.3 * new,
    # Real-time chunking: the server already inpainted the new chunk against the queued actions it was
    # sent (docs/protocol.md), so the new chunk replaces them as it is.
    "rtc": lambda old, new: new,
}


def register_aggregator(name: str, fn: AggregateFn) -> None:
    """Add an aggregation function under `name`; refuses to overwrite an existing one."""
    if name in AGGREGATORS:
        raise ValueError(f"aggregator {name!r} is already registered")
    AGGREGATORS[name] = fn


def get_aggregator(name: str) -> AggregateFn:
    """The registered aggregation function `name`, with a suggestion on a typo."""
    if name not in AGGREGATORS:
        close = difflib.get_close_matches(name, AGGREGATORS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown aggregator {name!r}; available: {sorted(AGGREGATORS)}{hint}")
    return AGGREGATORS[name]


def chunk_to_timed(actions: np.ndarray, start_timestep: int) -> list[TimedAction]:
    """float32[n, action_dim] chunk -> n TimedActions stamped start_timestep, start_timestep + 1, ..."""
    if actions.ndim != 2:
        raise ValueError(f"action chunk must be [n, action_dim], got shape {list(actions.shape)}")
    if start_timestep < 0:
        raise ValueError(f"start_timestep must be >= 0, got {start_timestep}")
    return [TimedAction(start_timestep + i, actions[i]) for i in range(actions.shape[0])]


def merge_chunk(
    queue: Sequence[TimedAction],
    incoming: Sequence[TimedAction],
    next_timestep: int,
    aggregate: AggregateFn,
) -> list[TimedAction]:
    """The queue after a chunk arrives, sorted by timestep.

    Incoming actions for timesteps before `next_timestep` are dropped (already executed); for a timestep
    present in both, the result is `aggregate(old, new)`; a timestep present in only one side keeps that
    side's action. The queued side never holds past timesteps (checked), so nothing stale survives.
    """
    old = {}
    for item in queue:
        if item.timestep < next_timestep:
            raise ValueError(f"queue holds timestep {item.timestep} but next_timestep is {next_timestep}")
        if item.timestep in old:
            raise ValueError(f"queue holds timestep {item.timestep} twice")
        old[item.timestep] = item.action
    merged = dict(old)
    for item in incoming:
        if item.timestep < next_timestep:
            continue
        if item.timestep in old:
            prev = old[item.timestep]
            if prev.shape != item.action.shape:
                raise ValueError(
                    f"timestep {item.timestep}: queued action shape {list(prev.shape)} "
                    f"!= incoming {list(item.action.shape)}"
                )
            merged[item.timestep] = np.asarray(aggregate(prev, item.action), dtype=item.action.dtype)
        else:
            merged[item.timestep] = item.action
    return [TimedAction(t, merged[t]) for t in sorted(merged)]


def pop_next(queue: Sequence[TimedAction], next_timestep: int) -> tuple[TimedAction | None, list[TimedAction]]:
    """Take the action to execute now. Returns (action or None when empty, remaining queue).

    The head is normally stamped `next_timestep`; if the queue starts later (a chunk that begins in the
    future), the head is still executed and the caller advances its clock to `head.timestep + 1`.
    """
    if not queue:
        return None, []
    head = queue[0]
    if head.timestep < next_timestep:
        raise ValueError(f"queue head is timestep {head.timestep}, already past next_timestep {next_timestep}")
    return head, list(queue[1:])


def chunk_problem(
    obs_id: int, timestep: int, actions: np.ndarray, sent_timestep: int | None, max_rows: int, action_dim: int
) -> tuple[str, str] | None:
    """Why a received chunk float32[n, action_dim] must not be executed, as (error code, message); None if
    it may be merged. `sent_timestep`: the timestep stamped on the observation `obs_id` this client sent
    (None if it sent none that is still unanswered); a chunk must start there, the client's own clock."""
    if sent_timestep is None or timestep != sent_timestep:
        sent = "an observation this client never sent" if sent_timestep is None else f"timestep {sent_timestep}"
        return "bad_timestep", f"chunk for observation {obs_id} starts at timestep {timestep}, but answers {sent}"
    rows, dim = actions.shape
    if dim != action_dim or rows > max_rows:
        return "bad_chunk", f"chunk of shape {[rows, dim]}; expected at most [{max_rows}, {action_dim}]"
    if not np.isfinite(actions).all():
        return "non_finite_action", f"chunk for observation {obs_id} holds NaN or inf"
    return None


def action_bounds(low: object, high: object, action_dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A robot's declared action range as float32[action_dim] arrays (None when it declares none).

    Entries may be -inf/+inf (that dimension is unbounded); NaN, a wrong shape or low > high are errors."""
    if low is None and high is None:
        return None
    if low is None or high is None:
        raise ValueError("a robot declares action_low and action_high together, got only one of them")
    lo, hi = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
    if lo.shape != (action_dim,) or hi.shape != (action_dim,):
        raise ValueError(
            f"action_low/action_high must be float32[{action_dim}], got {list(lo.shape)} and {list(hi.shape)}"
        )
    if np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
        raise ValueError(f"action range must be NaN-free with low <= high, got low={lo.tolist()} high={hi.tolist()}")
    return lo, hi


def safe_action(action: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray | None, bool]:
    """The last gate before `robot.send_action`: (action to execute or None, whether it was clamped).

    None when any entry is NaN or inf (the caller holds instead). Otherwise the action is clamped into the
    robot's declared range [low, high]: a policy's actions routinely overshoot a limit by a little, and a
    clamped action still moves the robot the intended way, while refusing it would stall the robot. Chunks
    are refused whole before this point when they hold a non-finite value; clamping is counted per action.
    """
    if not np.isfinite(action).all():
        return None, False
    if bounds is None:
        return action, False
    clamped = np.clip(action, bounds[0], bounds[1]).astype(action.dtype, copy=False)
    return clamped, bool((clamped != action).any())


def should_send_observation(queue_len: int, chunk_size: int, g: float, in_flight: bool, lookahead: int = 0) -> bool:
    """Send a new observation when the queue has drained to `g * chunk_size` actions and none is pending.

    g = 1 sends at every tick (a fresh chunk per step), g = 0 only when the queue is empty (synchronous
    behaviour without the idle wait being hidden). `lookahead`: ticks a request takes to be answered
    (`inference_delay_ticks`). The request also goes out once the queue is down to that many actions, so
    a small g cannot make the robot wait for a round trip it could have covered. A round trip longer
    than a whole chunk is the exception: the server computes one forward at a time, so a request sent
    with s actions queued brings chunk - s new actions per cycle of lookahead + chunk - 2s ticks, which
    for lookahead > chunk is best at s = 0; the request then waits for the empty queue (docs/protocol.md).
    """
    if not 0.0 <= g <= 1.0:
        raise ValueError(f"g (chunk size threshold) must be in [0, 1], got {g}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    threshold = 0.0 if lookahead > chunk_size else max(g * chunk_size, lookahead)
    return not in_flight and queue_len <= threshold


def inference_delay_ticks(round_trips_s: Sequence[float], fps: float, window: int = 5) -> int:
    """Control ticks that pass between sending an observation and merging its chunk: the slowest of the
    last `window` measured round trips (s), rounded up to whole ticks (the chunk is merged before the
    first tick after it arrives, so at most this many queued actions run meanwhile). 0 before any
    round trip is measured."""
    if fps <= 0 or window < 1:
        raise ValueError(f"need fps > 0 and window >= 1, got {fps}, {window}")
    recent = round_trips_s[-window:]
    return math.ceil(max(recent) * fps) if recent else 0


def states_similar(state: np.ndarray, last_state: np.ndarray, epsilon: float) -> bool:
    """True when the joint-space distance ||state - last_state||_2 is below `epsilon` (raw state units)."""
    if state.shape != last_state.shape:
        raise ValueError(f"state shape {list(state.shape)} != last processed state shape {list(last_state.shape)}")
    return bool(np.linalg.norm(state.astype(np.float64) - last_state.astype(np.float64)) < epsilon)


def should_process(state: np.ndarray, last_state: np.ndarray | None, must_go: bool, epsilon: float) -> bool:
    """The server's filter: run the policy unless the state is within `epsilon` of the last processed one.
    A must-go observation (the client's queue ran empty) is always processed."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    return must_go or last_state is None or not states_similar(state, last_state, epsilon)


def latency_budget_s(chunk_size: int, dt: float, g: float) -> float:
    """The latency budget of the spec, `chunk_size * dt * (1 - g)` seconds (50 * 0.033 * 0.3 = 0.5 s).

    Note it is stricter than the bare no-starvation bound for g > 0.5: at the send threshold the queue
    still holds `g * chunk_size` actions (`g * chunk_size * dt` s of motion). Staying under this budget
    also keeps most of each new chunk fresh instead of spent before it arrives.
    """
    if chunk_size <= 0 or dt <= 0 or not 0.0 <= g <= 1.0:
        raise ValueError(f"need chunk_size > 0, dt > 0, 0 <= g <= 1; got {chunk_size}, {dt}, {g}")
    return chunk_size * dt * (1.0 - g)


def within_latency_budget(latency_s: float, chunk_size: int, dt: float, g: float) -> bool:
    """Whether inference + round trip `latency_s` (s) is within `latency_budget_s`."""
    return latency_s < latency_budget_s(chunk_size, dt, g)
