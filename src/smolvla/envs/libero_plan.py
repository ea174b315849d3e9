"""LIBERO task goals (BDDL predicates) -> an ordered plan of motion primitives. Pure logic, no simulator.

A goal is the parsed BDDL `(:goal ...)` as LIBERO holds it (`env.parsed_problem["goal_state"]`): a list of
predicates such as ["on", "akita_black_bowl_1", "plate_1"], ["in", "alphabet_soup_1",
"basket_1_contain_region"], ["open", "wooden_cabinet_1_middle_region"], ["turnon", "flat_stove_1"]; an
"and" wrapper is flattened. Each predicate becomes one high-level step, and each step expands into the
primitives of `libero_primitives`:

    on/in (graspable)  -> approach, grasp, lift, carry, place, release, retreat
    on (a PUSH_ONLY object to a table region) -> push
    open / close       -> open_drawer / close_drawer (the articulated region, e.g. a cabinet drawer)
    turnon / turnoff   -> turn_knob

Order: drawers are opened first (a goal "in <drawer region>" needs its drawer open, even when the goal does
not say so, as in "open the top drawer and put the bowl inside"; then only as far as the object needs, its
`target` naming that object, so that the drawer does not reach the things on the table in front of it),
then objects are moved, then drawers
are closed, then knobs are turned (the stove is turned on last so that nothing is carried past it).
"""

from __future__ import annotations

from dataclasses import dataclass

# Objects too flat or wide for the Panda gripper (8 cm opening): moved by pushing them along the table.
PUSH_ONLY = ()
# Regions that are drawers of a cabinet: "<cabinet>_<top|middle|bottom>_region".
_DRAWER_LEVELS = ("top", "middle", "bottom")


@dataclass(frozen=True)
class PrimitiveCall:
    """One primitive with its arguments: `obj` is what it acts on (an object, a drawer region or a fixture
    with a knob); `target` where it goes (a body or site name), for approach/carry/place/push; for open_drawer the
    object the drawer must make room for (None: open it fully); for turn_knob "on" or "off"."""

    name: str
    obj: str
    target: str | None = None


# approach chooses the grasp with the room the hand needs at the destination too, so it is told where
_TAKES_TARGET = ("approach", "carry", "place")
PICK_AND_PLACE = ("approach", "grasp", "lift", "carry", "place", "release", "retreat")
PRIMITIVES = (*PICK_AND_PLACE, "push", "open_drawer", "close_drawer", "turn_knob")


def flatten_goal(goal: list) -> list[tuple[str, ...]]:
    """The atomic predicates of a goal, lower-cased, "and" wrappers removed (in order)."""
    if not isinstance(goal, list | tuple) or not goal:
        raise ValueError(f"goal must be a non-empty list of predicates, got {goal!r}")
    if isinstance(goal[0], str):
        head = goal[0].lower()
        if head == "and":
            return [p for sub in goal[1:] for p in flatten_goal(sub)]
        if not all(isinstance(a, str) for a in goal):
            raise ValueError(f"predicate arguments must be names, got {goal!r}")
        return [(head, *goal[1:])]
    return [p for sub in goal for p in flatten_goal(sub)]


def is_drawer_region(name: str) -> bool:
    """True for a cabinet drawer region, e.g. "wooden_cabinet_1_top_region" (not "..._top_side")."""
    parts = name.split("_")
    return len(parts) >= 3 and parts[-1] == "region" and parts[-2] in _DRAWER_LEVELS and "cabinet" in name


def _is_push_only(obj: str) -> bool:
    return any(obj.startswith(kind + "_") for kind in PUSH_ONLY)


def plan_from_goal(goal: list) -> list[PrimitiveCall]:
    """Primitive calls that reach `goal`, in execution order (see the module docstring)."""
    opens: dict[str, str | None] = {}  # drawer region -> the object it must make room for (None: fully)
    moves: list[PrimitiveCall] = []
    closes: list[str] = []
    knobs: list[PrimitiveCall] = []
    for pred in flatten_goal(goal):
        head, args = pred[0], pred[1:]
        arity = {"on": 2, "in": 2, "open": 1, "close": 1, "turnon": 1, "turnoff": 1}.get(head)
        if arity is None:
            raise ValueError(
                f"no primitive plan for predicate {head!r} in {pred}; expected on, in, open, close, turnon or turnoff"
            )
        if len(args) != arity:
            raise ValueError(f"predicate {head!r} takes {arity} argument(s), got {list(args)}")
        if head in ("on", "in"):
            obj, target = args
            if head == "in" and is_drawer_region(target) and target not in opens:
                opens[target] = obj
            if _is_push_only(obj):
                moves.append(PrimitiveCall("push", obj, target))
            else:
                moves += [PrimitiveCall(p, obj, target if p in _TAKES_TARGET else None) for p in PICK_AND_PLACE]
        elif head == "open":
            opens[args[0]] = None
        elif head == "close":
            closes.append(args[0])
        else:
            knobs.append(PrimitiveCall("turn_knob", args[0], "on" if head == "turnon" else "off"))
    return (
        [PrimitiveCall("open_drawer", r, room) for r, room in opens.items()]
        + moves
        + [PrimitiveCall("close_drawer", r) for r in closes]
        + knobs
    )
