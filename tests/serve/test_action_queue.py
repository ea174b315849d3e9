"""Pure async-inference logic: queue merging, aggregation, send decision, similarity filter, budget."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.serve.action_queue import (
    AGGREGATORS,
    TimedAction,
    action_bounds,
    chunk_problem,
    chunk_to_timed,
    get_aggregator,
    inference_delay_ticks,
    latency_budget_s,
    merge_chunk,
    pop_next,
    register_aggregator,
    safe_action,
    should_process,
    should_send_observation,
    states_similar,
    within_latency_budget,
)


def _queue(start: int, values: list[float]) -> list[TimedAction]:
    return [TimedAction(start + i, np.array([v], dtype=np.float32)) for i, v in enumerate(values)]


def _as_pairs(queue: list[TimedAction]) -> list[tuple[int, float]]:
    return [(a.timestep, round(float(a.action[0]), 6)) for a in queue]


def test_chunk_to_timed_stamps_consecutive_timesteps() -> None:
    timed = chunk_to_timed(np.arange(6, dtype=np.float32).reshape(3, 2), start_timestep=7)
    assert [a.timestep for a in timed] == [7, 8, 9]
    np.testing.assert_array_equal(timed[2].action, [4.0, 5.0])
    with pytest.raises(ValueError, match=r"action chunk must be \[n, action_dim\], got shape \[4\]"):
        chunk_to_timed(np.zeros(4, np.float32), 0)


def test_merge_drops_past_aggregates_overlap_appends_tail() -> None:
    # Executed up to 11; queued 12..14 from the old chunk; the new chunk was computed from timestep 10.
    queue = _queue(12, [1.0, 1.0, 1.0])
    incoming = _queue(10, [9.0, 9.0, 2.0, 2.0, 2.0, 5.0, 6.0])  # timesteps 10..16
    merged = merge_chunk(queue, incoming, next_timestep=12, aggregate=get_aggregator("weighted"))
    assert _as_pairs(merged) == [(12, 1.7), (13, 1.7), (14, 1.7), (15, 5.0), (16, 6.0)]  # 0.3*1 + 0.7*2 = 1.7


@pytest.mark.parametrize(
    ("name", "expected"), [("weighted", 3.4), ("latest", 4.0), ("average", 3.0), ("conservative", 2.6)]
)
def test_aggregators_weights(name: str, expected: float) -> None:
    old, new = np.array([2.0]), np.array([4.0])
    assert get_aggregator(name)(old, new)[0] == pytest.approx(expected)


def test_merge_into_empty_queue_keeps_only_future_actions() -> None:
    merged = merge_chunk([], _queue(0, [0.0, 1.0, 2.0, 3.0]), next_timestep=2, aggregate=get_aggregator("latest"))
    assert _as_pairs(merged) == [(2, 2.0), (3, 3.0)]


def test_merge_keeps_queued_actions_beyond_the_new_chunk() -> None:
    merged = merge_chunk(_queue(5, [1.0, 1.0, 1.0]), _queue(5, [3.0]), 5, get_aggregator("average"))
    assert _as_pairs(merged) == [(5, 2.0), (6, 1.0), (7, 1.0)]


def test_merge_rejects_a_queue_holding_past_or_duplicate_timesteps() -> None:
    with pytest.raises(ValueError, match="queue holds timestep 3 but next_timestep is 4"):
        merge_chunk(_queue(3, [1.0]), [], next_timestep=4, aggregate=get_aggregator("latest"))
    with pytest.raises(ValueError, match="queue holds timestep 4 twice"):
        merge_chunk(_queue(4, [1.0]) + _queue(4, [2.0]), [], 4, get_aggregator("latest"))
    bad = [TimedAction(4, np.zeros(3, np.float32))]
    with pytest.raises(ValueError, match=r"timestep 4: queued action shape \[1\] != incoming \[3\]"):
        merge_chunk(_queue(4, [1.0]), bad, 4, get_aggregator("latest"))


def test_aggregator_registry_and_typo_hint() -> None:
    with pytest.raises(ValueError, match=r"unknown aggregator 'weigthed'.*did you mean 'weighted'\?"):
        get_aggregator("weigthed")
    with pytest.raises(ValueError, match="aggregator 'latest' is already registered"):
        register_aggregator("latest", lambda old, new: new)
    register_aggregator("test_max", lambda old, new: np.maximum(old, new))
    try:
        merged = merge_chunk(_queue(0, [5.0]), _queue(0, [2.0]), 0, get_aggregator("test_max"))
        assert _as_pairs(merged) == [(0, 5.0)]
    finally:
        del AGGREGATORS["test_max"]


def test_pop_next_takes_the_head() -> None:
    item, rest = pop_next(_queue(3, [1.0, 2.0]), next_timestep=3)
    assert item is not None and item.timestep == 3 and _as_pairs(rest) == [(4, 2.0)]
    assert pop_next([], 0) == (None, [])
    with pytest.raises(ValueError, match="queue head is timestep 2, already past next_timestep 3"):
        pop_next(_queue(2, [1.0]), next_timestep=3)


@pytest.mark.parametrize(
    ("queue_len", "in_flight", "expected"),
    [(50, False, False), (36, False, False), (35, False, True), (0, False, True), (10, True, False)],
)
def test_should_send_observation_threshold(queue_len: int, in_flight: bool, expected: bool) -> None:
    assert should_send_observation(queue_len, chunk_size=50, g=0.7, in_flight=in_flight) is expected


def test_the_measured_round_trip_brings_the_request_forward() -> None:
    # g = 0.2 alone waits for 10 of 50 actions; a 0.5 s round trip at 30 fps needs 15 queued.
    assert not should_send_observation(12, chunk_size=50, g=0.2, in_flight=False)
    assert should_send_observation(12, chunk_size=50, g=0.2, in_flight=False, lookahead=15)
    assert not should_send_observation(12, chunk_size=50, g=0.2, in_flight=True, lookahead=15)
    # A round trip longer than the chunk: asking early only trades actions for holds; ask when empty.
    assert not should_send_observation(35, chunk_size=50, g=0.7, in_flight=False, lookahead=51)
    assert should_send_observation(0, chunk_size=50, g=0.7, in_flight=False, lookahead=51)


def test_inference_delay_ticks_is_the_slowest_recent_round_trip_in_whole_ticks() -> None:
    assert inference_delay_ticks([], fps=30) == 0
    assert inference_delay_ticks([0.1, 0.5, 0.2], fps=30) == 15
    assert inference_delay_ticks([0.9, 0.1, 0.1], fps=30, window=2) == 3  # only the last two count
    assert inference_delay_ticks([0.101], fps=10) == 2  # a reply just after a tick waits for the next one
    with pytest.raises(ValueError, match="need fps > 0 and window >= 1, got 0, 5"):
        inference_delay_ticks([0.1], fps=0)


def test_the_rtc_aggregator_takes_the_new_chunk_as_it_is() -> None:
    # The server already inpainted the new chunk against the queued actions: nothing to blend.
    merged = merge_chunk(_queue(3, [1.0, 1.0]), _queue(2, [9.0, 8.0, 7.0, 6.0]), 3, get_aggregator("rtc"))
    assert _as_pairs(merged) == [(3, 8.0), (4, 7.0), (5, 6.0)]


def test_should_send_observation_validates() -> None:
    with pytest.raises(ValueError, match=r"g \(chunk size threshold\) must be in \[0, 1\], got 1.5"):
        should_send_observation(0, 50, 1.5, False)
    with pytest.raises(ValueError, match="chunk_size must be > 0, got 0"):
        should_send_observation(0, 0, 0.5, False)


def test_similarity_filter() -> None:
    last = np.zeros(3, np.float32)
    near, far = np.array([0.03, 0.03, 0.0], np.float32), np.array([0.05, 0.0, 0.0], np.float32)
    assert states_similar(near, last, 0.05)  # L2 = 0.042
    assert not states_similar(far, last, 0.05)  # exactly epsilon is not "within"
    assert should_process(near, None, must_go=False, epsilon=0.05)  # nothing processed yet
    assert not should_process(near, last, must_go=False, epsilon=0.05)
    assert should_process(near, last, must_go=True, epsilon=0.05)  # queue ran empty: always processed
    assert should_process(far, last, must_go=False, epsilon=0.05)
    with pytest.raises(ValueError, match=r"state shape \[2\] != last processed state shape \[3\]"):
        states_similar(np.zeros(2), last, 0.05)
    with pytest.raises(ValueError, match="epsilon must be >= 0, got -1"):
        should_process(near, last, False, -1)


def test_latency_budget_matches_the_spec_example() -> None:
    assert latency_budget_s(50, 0.033, 0.7) == pytest.approx(0.495)
    assert within_latency_budget(0.4, 50, 0.033, 0.7)
    assert not within_latency_budget(0.6, 50, 0.033, 0.7)
    with pytest.raises(ValueError, match="need chunk_size > 0, dt > 0, 0 <= g <= 1; got 50, 0.0, 0.7"):
        latency_budget_s(50, 0.0, 0.7)


def test_safe_action_refuses_non_finite_and_clamps_into_the_declared_range() -> None:
    bounds = action_bounds([-1.0, 0.0, -np.inf], [1.0, 0.5, np.inf], 3)
    action, clipped = safe_action(np.array([0.5, 0.25, 3e38], np.float32), bounds)
    np.testing.assert_array_equal(
        action, np.array([0.5, 0.25, 3e38], np.float32)
    )  # an unbounded dimension keeps any finite value
    assert not clipped
    action, clipped = safe_action(np.array([1.02, -0.1, 7.0], np.float32), bounds)
    np.testing.assert_array_equal(action, np.array([1.0, 0.0, 7.0], np.float32))
    assert clipped and action.dtype == np.float32
    for bad in (np.nan, np.inf, -np.inf):
        assert safe_action(np.array([0.0, bad, 0.0], np.float32), bounds) == (None, False)
        assert safe_action(np.array([0.0, bad, 0.0], np.float32), None) == (None, False)
    same = np.array([5.0, 6.0, 7.0], np.float32)
    assert safe_action(same, None)[0] is same


def test_action_bounds_validation() -> None:
    assert action_bounds(None, None, 2) is None
    with pytest.raises(ValueError, match="declares action_low and action_high together, got only one"):
        action_bounds([0.0, 0.0], None, 2)
    with pytest.raises(ValueError, match=r"must be float32\[2\], got \[3\] and \[2\]"):
        action_bounds([0.0, 0.0, 0.0], [1.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"low <= high, got low=\[0.0, 2.0\] high=\[1.0, 1.0\]"):
        action_bounds([0.0, 2.0], [1.0, 1.0], 2)
    with pytest.raises(ValueError, match="NaN-free"):
        action_bounds([0.0, np.nan], [1.0, 1.0], 2)


def test_chunk_problem_names_why_a_chunk_is_refused() -> None:
    ok = np.zeros((4, 2), np.float32)
    assert chunk_problem(7, 12, ok, sent_timestep=12, max_rows=4, action_dim=2) is None
    assert chunk_problem(7, 9_000_032, ok, 12, 4, 2) == (
        "bad_timestep",
        "chunk for observation 7 starts at timestep 9000032, but answers timestep 12",
    )
    assert chunk_problem(7, 0, ok, None, 4, 2) == (
        "bad_timestep",
        "chunk for observation 7 starts at timestep 0, but answers an observation this client never sent",
    )
    assert chunk_problem(7, 12, np.zeros((5, 2), np.float32), 12, 4, 2) == (
        "bad_chunk",
        "chunk of shape [5, 2]; expected at most [4, 2]",
    )
    assert chunk_problem(7, 12, ok, 12, 4, 3)[0] == "bad_chunk"
    nan = ok.copy()
    nan[3, 1] = np.nan
    assert chunk_problem(7, 12, nan, 12, 4, 2) == ("non_finite_action", "chunk for observation 7 holds NaN or inf")
