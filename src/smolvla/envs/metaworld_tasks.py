"""Meta-World task tables: names, task sets (MT10/MT50, difficulty groups) and one instruction per task.

Kept free of the `metaworld` import so names can be listed, validated and suggested without the simulator.

The difficulty grouping is the one the SmolVLA and pi0 Meta-World results are reported with (from Seo et
al., "Masked World Models for Visual Control", as tabulated in LeRobot's Meta-World env config):
28 easy, 11 medium, 6 hard, 5 very hard = all 50 tasks.
"""

from __future__ import annotations

# One instruction per task, written as a command to the robot (the policy's language input).
INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "pick up the ring nut and fit it over the peg",
    "basketball-v3": "pick up the ball and drop it through the hoop",
    "bin-picking-v3": "move the puck from the left bin into the right bin",
    "box-close-v3": "pick up the lid and put it on the box",
    "button-press-topdown-v3": "press the button down from above",
    "button-press-topdown-wall-v3": "reach over the wall and press the button down from above",
    "button-press-v3": "push the button in from the front",
    "button-press-wall-v3": "get around the wall and push the button in",
    "coffee-button-v3": "press the button on the coffee machine",
    "coffee-pull-v3": "pull the mug out from under the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial half a turn",
    "disassemble-v3": "lift the ring nut off the peg",
    "door-close-v3": "swing the door shut",
    "door-lock-v3": "turn the lock on the door to lock it",
    "door-open-v3": "pull the door open by its handle",
    "door-unlock-v3": "turn the lock on the door to unlock it",
    "drawer-close-v3": "push the drawer shut",
    "drawer-open-v3": "pull the drawer open",
    "faucet-close-v3": "turn the faucet handle to close it",
    "faucet-open-v3": "turn the faucet handle to open it",
    "hammer-v3": "pick up the hammer and drive the nail into the wall",
    "hand-insert-v3": "put the gripper into the hole in the table",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever down a quarter turn",
    "peg-insert-side-v3": "pick up the peg and push it sideways into the hole",
    "peg-unplug-side-v3": "pull the peg sideways out of the hole",
    "pick-out-of-hole-v3": "lift the puck out of the hole",
    "pick-place-v3": "pick up the puck and put it at the goal",
    "pick-place-wall-v3": "pick up the puck, carry it over the wall and put it at the goal",
    "plate-slide-back-side-v3": "slide the plate sideways out of the cabinet",
    "plate-slide-back-v3": "slide the plate back out of the cabinet",
    "plate-slide-side-v3": "slide the plate sideways into the cabinet",
    "plate-slide-v3": "slide the plate into the cabinet",
    "push-back-v3": "push the puck backwards to the goal",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck around the wall to the goal",
    "reach-v3": "move the gripper to the goal position",
    "reach-wall-v3": "move the gripper over the wall to the goal position",
    "shelf-place-v3": "pick up the puck and put it on the shelf",
    "soccer-v3": "push the ball into the goal",
    "stick-pull-v3": "pick up the stick and use it to pull the box",
    "stick-push-v3": "pick up the stick and use it to push the box",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the edge of the table",
    "window-close-v3": "slide the window shut",
    "window-open-v3": "slide the window open",
}

MT50: tuple[str, ...] = tuple(sorted(INSTRUCTIONS))

# Meta-World's own MT10 selection.
MT10: tuple[str, ...] = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)

DIFFICULTY: dict[str, tuple[str, ...]] = {
    "easy": (
        "button-press-v3",
        "button-press-topdown-v3",
        "button-press-topdown-wall-v3",
        "button-press-wall-v3",
        "coffee-button-v3",
        "dial-turn-v3",
        "door-close-v3",
        "door-lock-v3",
        "door-open-v3",
        "door-unlock-v3",
        "drawer-close-v3",
        "drawer-open-v3",
        "faucet-close-v3",
        "faucet-open-v3",
        "handle-press-v3",
        "handle-press-side-v3",
        "handle-pull-v3",
        "handle-pull-side-v3",
        "lever-pull-v3",
        "plate-slide-v3",
        "plate-slide-back-v3",
        "plate-slide-back-side-v3",
        "plate-slide-side-v3",
        "reach-v3",
        "reach-wall-v3",
        "window-close-v3",
        "window-open-v3",
        "peg-unplug-side-v3",
    ),
    "medium": (
        "basketball-v3",
        "bin-picking-v3",
        "box-close-v3",
        "coffee-pull-v3",
        "coffee-push-v3",
        "hammer-v3",
        "peg-insert-side-v3",
        "push-wall-v3",
        "soccer-v3",
        "sweep-v3",
        "sweep-into-v3",
    ),
    "hard": (
        "assembly-v3",
        "hand-insert-v3",
        "pick-out-of-hole-v3",
        "pick-place-v3",
        "push-v3",
        "push-back-v3",
    ),
    "very_hard": (
        "shelf-place-v3",
        "disassemble-v3",
        "stick-pull-v3",
        "stick-push-v3",
        "pick-place-wall-v3",
    ),
}

TASK_SETS: dict[str, tuple[str, ...]] = {"mt10": MT10, "mt50": MT50, **DIFFICULTY}


def difficulty_of(task: str) -> str:
    """The difficulty group ("easy", "medium", "hard", "very_hard") of a Meta-World task name."""
    for group, tasks in DIFFICULTY.items():
        if task in tasks:
            return group
    raise ValueError(f"unknown Meta-World task {task!r}; expected one of {list(MT50)}")
