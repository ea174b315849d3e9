"""LIBERO goal -> primitive plan composition (pure logic; no simulator needed)."""

from __future__ import annotations

import pytest

from smolvla.envs.libero_plan import PICK_AND_PLACE, PrimitiveCall, flatten_goal, is_drawer_region, plan_from_goal


def _names(plan: list[PrimitiveCall]) -> list[str]:
    return [c.name for c in plan]


def test_pick_and_place_goal_expands_into_the_primitive_chain() -> None:
    plan = plan_from_goal([["on", "akita_black_bowl_1", "plate_1"]])
    assert _names(plan) == list(PICK_AND_PLACE)
    assert {c.obj for c in plan} == {"akita_black_bowl_1"}
    # approach (it chooses a grasp with room at the destination too), carry and place know where it goes
    assert [c.target for c in plan] == ["plate_1", None, None, "plate_1", "plate_1", None, None]


def test_and_wrappers_are_flattened_in_order() -> None:
    goal = [
        "and",
        ["in", "alphabet_soup_1", "basket_1_contain_region"],
        ["In", "cream_cheese_1", "basket_1_contain_region"],
    ]
    assert flatten_goal(goal) == [
        ("in", "alphabet_soup_1", "basket_1_contain_region"),
        ("in", "cream_cheese_1", "basket_1_contain_region"),
    ]
    plan = plan_from_goal(goal)
    assert [c.obj for c in plan] == ["alphabet_soup_1"] * 7 + ["cream_cheese_1"] * 7


def test_in_a_drawer_opens_it_first_and_close_comes_after_the_move() -> None:
    # libero_10: "put the black bowl in the bottom drawer of the cabinet and close it"
    goal = [["close", "white_cabinet_1_bottom_region"], ["in", "akita_black_bowl_1", "white_cabinet_1_bottom_region"]]
    plan = plan_from_goal(goal)
    # opened as far as the bowl needs (its name rides along), not fully
    assert plan[0] == PrimitiveCall("open_drawer", "white_cabinet_1_bottom_region", "akita_black_bowl_1")
    assert _names(plan[1:8]) == list(PICK_AND_PLACE)
    assert plan[-1] == PrimitiveCall("close_drawer", "white_cabinet_1_bottom_region")
    # an explicit open of the same drawer is not repeated
    twice = plan_from_goal(
        [["open", "wooden_cabinet_1_top_region"], ["in", "akita_black_bowl_1", "wooden_cabinet_1_top_region"]]
    )
    assert _names(twice).count("open_drawer") == 1
    # ... and an explicit open means fully, whichever predicate comes first
    assert twice[0] == PrimitiveCall("open_drawer", "wooden_cabinet_1_top_region")
    later = plan_from_goal(
        [["in", "akita_black_bowl_1", "wooden_cabinet_1_top_region"], ["open", "wooden_cabinet_1_top_region"]]
    )
    assert later[0] == PrimitiveCall("open_drawer", "wooden_cabinet_1_top_region")


def test_knobs_last_plates_carried_push_only_objects_pushed(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_from_goal([["turnon", "flat_stove_1"], ["on", "moka_pot_1", "flat_stove_1_cook_region"]])
    assert plan[-1] == PrimitiveCall("turn_knob", "flat_stove_1", "on")
    assert _names(plan[:-1]) == list(PICK_AND_PLACE)
    goal = [["on", "plate_1", "main_table_stove_front_region"]]
    assert _names(plan_from_goal(goal)) == list(PICK_AND_PLACE)  # taken by the rim, like a bowl
    monkeypatch.setattr("smolvla.envs.libero_plan.PUSH_ONLY", ("plate",))
    assert plan_from_goal(goal) == [PrimitiveCall("push", "plate_1", "main_table_stove_front_region")]
    assert plan_from_goal([["turnoff", "flat_stove_1"]]) == [PrimitiveCall("turn_knob", "flat_stove_1", "off")]


def test_drawer_regions() -> None:
    assert is_drawer_region("wooden_cabinet_1_middle_region")
    assert not is_drawer_region("wooden_cabinet_1_top_side")  # the cabinet's top surface, not a drawer
    assert not is_drawer_region("basket_1_contain_region")


def test_bad_goals_name_what_was_expected() -> None:
    with pytest.raises(ValueError, match="no primitive plan for predicate 'stack'"):
        plan_from_goal([["stack", "a", "b"]])
    with pytest.raises(ValueError, match="predicate 'on' takes 2 argument"):
        plan_from_goal([["on", "a"]])
    with pytest.raises(ValueError, match="non-empty list of predicates"):
        plan_from_goal([])
