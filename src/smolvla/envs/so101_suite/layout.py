"""Randomised scene layouts and the two named splits of the suite.

`id`  (in distribution): cubes and bins placed in the training region in front of the arm, the training
      colours (red and blue cubes), 3 cm cubes, the default lighting.
`ood` (out of distribution): cubes placed outside the training region (but still reachable), colours never
      used in `id`, 2.4 or 3.6 cm cubes, and a changed key light (dimmer or brighter, tinted, from elsewhere).

Placements are polar (radius r from the arm's base, azimuth phi from its forward x axis) because that is the
shape of what the arm reaches with its jaws pointing down (r in about [0.14, 0.30] m at table height).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smolvla.envs.so101_suite.scene import BIN_INNER_HALF, BIN_WALL_HALF_THICKNESS, CUBE_HALF

SPLITS = ("id", "ood")
ID_COLOURS = {"red": (0.85, 0.1, 0.1), "blue": (0.1, 0.25, 0.85)}
OOD_COLOURS = {"green": (0.1, 0.65, 0.2), "cyan": (0.1, 0.75, 0.85), "purple": (0.55, 0.2, 0.75)}
NEUTRAL_BIN = (0.3, 0.3, 0.32)
# Cube regions (r min, r max, |phi| max in degrees): ood cubes lie in the outer region minus the inner one.
CUBE_REGION_ID = (0.16, 0.25, 30.0)
CUBE_REGION_OUTER = (0.14, 0.285, 45.0)
BIN_REGION_ID = (0.18, 0.26, 50.0)
BIN_REGION_OOD = (0.17, 0.27, 50.0)
OOD_CUBE_HALVES = (0.012, 0.018)
CUBE_MAX_YAW = np.radians(30.0)
# Minimum centre distances (m): a cube clear of a bin's outer wall, cubes a jaw-width apart, bins apart.
BIN_OUTER = BIN_INNER_HALF + 2 * BIN_WALL_HALF_THICKNESS
MIN_CUBE_BIN = BIN_OUTER + 0.06
MIN_CUBE_CUBE = 0.075
MIN_BIN_BIN = 2 * BIN_OUTER + 0.02
DEFAULT_LIGHT = {"diffuse": (0.7, 0.7, 0.7), "dir": (-0.1, 0.15, -1.0)}


@dataclass(frozen=True)
class Layout:
    """One scene draw. Cubes and bins in the task's order; xy in metres, yaw in radians, rgba in [0, 1]."""

    cube_xy: list[np.ndarray]
    cube_yaw: list[float]
    cube_half: list[float]
    cube_colour: list[str]
    bin_xy: list[np.ndarray] = field(default_factory=list)
    bin_colour: list[str] = field(default_factory=list)
    light_diffuse: tuple[float, float, float] = DEFAULT_LIGHT["diffuse"]
    light_dir: tuple[float, float, float] = DEFAULT_LIGHT["dir"]


def colour_rgb(name: str) -> tuple[float, float, float]:
    return {**ID_COLOURS, **OOD_COLOURS}.get(name, NEUTRAL_BIN)


def _polar(rng: np.random.Generator, region: tuple[float, float, float]) -> np.ndarray:
    r = rng.uniform(region[0], region[1])
    phi = np.radians(rng.uniform(-region[2], region[2]))
    return np.array([r * np.cos(phi), r * np.sin(phi)])


def in_id_cube_region(xy: np.ndarray) -> bool:
    r, phi = np.hypot(*xy), np.degrees(np.arctan2(xy[1], xy[0]))
    return CUBE_REGION_ID[0] <= r <= CUBE_REGION_ID[1] and abs(phi) <= CUBE_REGION_ID[2]


def _cube_xy(rng: np.random.Generator, split: str) -> np.ndarray:
    if split == "id":
        return _polar(rng, CUBE_REGION_ID)
    while True:  # the outer fan minus the training region (about half of its area)
        xy = _polar(rng, CUBE_REGION_OUTER)
        if not in_id_cube_region(xy):
            return xy


def _far(xy: np.ndarray, others: list[np.ndarray], min_dist: float) -> bool:
    return all(np.linalg.norm(xy - o) >= min_dist for o in others)


def sample_layout(
    rng: np.random.Generator, split: str, n_cubes: int, bin_colours: list[str | None], cube_colours: list[str]
) -> Layout:
    """Draw a layout: bins first (named colours, or None for the neutral bin), then cubes clear of them.

    cube_colours: in `id` the colours to use; in `ood` they are replaced by distinct unseen colours, the
    bins of sorting following their cube (bin i has cube i's colour when bin_colours[i] is not None).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    ood = split == "ood"
    if ood:
        cube_colours = list(rng.choice(list(OOD_COLOURS), size=n_cubes, replace=False))
    colour_of_bin = [None if c is None else cube_colours[i] for i, c in enumerate(bin_colours)]
    for _ in range(1000):
        bins: list[np.ndarray] = []
        for i in range(len(bin_colours)):
            region = BIN_REGION_OOD if ood else BIN_REGION_ID
            if len(bin_colours) == 2:  # one bin each side, so that two cubes fit between them
                xy = _polar(rng, (region[0], region[1], 0.0))
                phi = np.radians(rng.uniform(35.0, region[2]) * (1 if i == 0 else -1))
                xy = np.hypot(*xy) * np.array([np.cos(phi), np.sin(phi)])
            else:
                xy = _polar(rng, region)
            bins.append(xy)
        cubes: list[np.ndarray] = []
        for _ in range(n_cubes):
            xy = _cube_xy(rng, split)
            if not (_far(xy, bins, MIN_CUBE_BIN) and _far(xy, cubes, MIN_CUBE_CUBE)):
                break
            cubes.append(xy)
        if len(cubes) == n_cubes and all(_far(b, bins[:i], MIN_BIN_BIN) for i, b in enumerate(bins)):
            break
    else:  # pragma: no cover  (the regions leave ample room; this guards a future edit that shrinks them)
        raise RuntimeError(f"no {split} layout with {n_cubes} cubes and {len(bin_colours)} bins in 1000 draws")
    if len(bin_colours) == 2 and rng.random() < 0.5:
        bins.reverse()  # which colour's bin is on which side is part of the draw
    light = DEFAULT_LIGHT
    if ood:
        scale = rng.choice([0.35, 1.3])
        tint = rng.uniform(0.75, 1.0, size=3)
        light = {"diffuse": tuple(scale * tint), "dir": (rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), -1.0)}
    return Layout(
        cube_xy=cubes,
        cube_yaw=list(rng.uniform(-CUBE_MAX_YAW, CUBE_MAX_YAW, size=n_cubes)),
        cube_half=list(rng.choice(OOD_CUBE_HALVES, size=n_cubes)) if ood else [CUBE_HALF] * n_cubes,
        cube_colour=list(cube_colours),
        bin_xy=bins,
        bin_colour=[c or "neutral" for c in colour_of_bin],
        light_diffuse=tuple(float(v) for v in light["diffuse"]),
        light_dir=tuple(float(v) for v in light["dir"]),
    )
