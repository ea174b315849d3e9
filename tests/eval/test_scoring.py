import pytest

from smolvla.eval.scoring import EpisodeResult, by_group, by_task, summarize


def _r(name, seed, success, stages=None, steps=10):
    return EpisodeResult(name, seed, success, steps, 1.0, stage_scores=stages or {})


def test_partial_credit_pick_place():
    grasped_only = _r("so101/pick-place", 0, False, {"pick": 0.5, "place": 0.0})
    done = _r("so101/pick-place", 1, True, {"pick": 0.5, "place": 0.5})
    nothing = _r("so101/pick-place", 2, False, {"pick": 0.0, "place": 0.0})
    assert [grasped_only.score, done.score, nothing.score] == [0.5, 1.0, 0.0]
    s = summarize([grasped_only, done, nothing])
    assert s.success_rate == pytest.approx(1 / 3)
    assert s.mean_score == pytest.approx(0.5)


def test_sorting_quarter_steps_and_bad_sum():
    assert _r("sort", 0, False, {f"step{i}": 0.25 for i in range(3)}).score == 0.75
    with pytest.raises(ValueError, match=r"stage scores sum to 1.5, expected \[0, 1\]"):
        _ = _r("sort", 0, False, {"a": 1.0, "b": 0.5}).score


def test_groups_average_task_rates_not_episodes():
    results = [_r("a", 0, True), _r("a", 1, True), _r("b", 0, False), _r("b", 1, False), _r("b", 2, True)]
    per_task = by_task(results)
    assert per_task["a"].success_rate == 1.0 and per_task["b"].success_rate == pytest.approx(1 / 3)
    groups = by_group(results, lambda name: "easy")
    assert groups["easy"] == pytest.approx((1.0 + 1 / 3) / 2)


def test_summarize_empty_is_an_error():
    with pytest.raises(ValueError, match="zero episodes"):
        summarize([])
