"""Normalisation statistics: a strict container keyed by feature name.

Stats are stored flat, as LeRobot's normaliser state files do: `"observation.state.mean"`,
`"action.std"`, each float32[D]. `NormStats.from_flat` accepts a flat dict only when every key belongs to
a known feature; anything else (a dataset-prefixed `so100.buffer.action.mean`, a typo) is an error naming
the keys, because silently ignoring them makes a policy emit un-normalised actions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

# Stats each mode needs. "identity" needs none.
REQUIRED_STATS = {"mean_std": ("mean", "std"), "identity": ()}


@dataclass(frozen=True, eq=False)
class NormStats:
    """Per-feature statistics: {feature: {stat: float32[D]}}, e.g. {"action": {"mean": ..., "std": ...}}."""

    stats: Mapping[str, Mapping[str, torch.Tensor]]

    def get(self, feature: str, stat: str) -> torch.Tensor:
        if feature not in self.stats or stat not in self.stats[feature]:
            have = sorted(self.to_flat())
            raise KeyError(f"normalisation stats missing {feature}.{stat}; have {have}")
        return self.stats[feature][stat]

    def to_flat(self) -> dict[str, torch.Tensor]:
        """{"<feature>.<stat>": tensor}, the layout of stats.safetensors."""
        return {f"{f}.{s}": t for f, d in self.stats.items() for s, t in d.items()}

    @classmethod
    def from_flat(
        cls,
        flat: Mapping[str, torch.Tensor],
        dims: Mapping[str, int],
        modes: Mapping[str, str],
        *,
        source: str = "stats",
        ignore_features: tuple[str, ...] = (),
    ) -> NormStats:
        """Parse flat stats strictly against the expected features.

        dims: {feature: D} of the features the policy normalises; modes: {feature: "mean_std" | "identity"}.
        ignore_features: other known features whose stats may be present and are not used (e.g. camera
            stats in a LeRobot normaliser file, where images use identity normalisation).
        Raises ValueError naming unknown keys, missing required stats and wrong shapes; non-finite stats
        (LeRobot fills never-set buffers with inf) are an error too.
        """
        known = sorted(set(dims) | set(ignore_features), key=len, reverse=True)
        parsed: dict[str, dict[str, torch.Tensor]] = {}
        unknown, ignored = [], []
        for key, value in flat.items():
            feature = next((f for f in known if key.startswith(f + ".")), None)
            if feature is None:
                unknown.append(key)
            elif feature not in dims:
                ignored.append(key)
            else:
                parsed.setdefault(feature, {})[key[len(feature) + 1 :]] = value
        if unknown:
            raise ValueError(
                f"{source}: unexpected normalisation stats keys {sorted(unknown)}; expected '<feature>.<stat>' for "
                f"features {sorted(dims)}. Dataset-prefixed keys need an explicit rename mapping."
            )
        if ignored:
            logger.debug("%s: stats of identity-normalised features not used: %s", source, sorted(ignored))
        problems = []
        for feature, dim in dims.items():
            mode = modes.get(feature, "mean_std")
            for stat in REQUIRED_STATS[mode]:
                tensor = parsed.get(feature, {}).get(stat)
                if tensor is None:
                    problems.append(f"missing {feature}.{stat}")
                elif tuple(tensor.shape) != (dim,):
                    problems.append(f"{feature}.{stat} has shape {tuple(tensor.shape)}, expected ({dim},)")
                elif not torch.isfinite(tensor).all():
                    problems.append(f"{feature}.{stat} has non-finite values (stats never set?)")
        if problems:
            raise ValueError(f"{source}: bad normalisation stats: " + "; ".join(problems))
        # Keep only the stats the modes need, as float32: others (min, max, count, quantiles) are unused.
        kept = {
            f: {s: parsed[f][s].detach().to(torch.float32).clone() for s in REQUIRED_STATS[modes.get(f, "mean_std")]}
            for f in dims
        }
        return cls({f: d for f, d in kept.items() if d})

    def allclose(self, other: NormStats, rtol: float = 1e-6) -> bool:
        a, b = self.to_flat(), other.to_flat()
        return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=rtol, atol=0) for k in a)

    def summary(self) -> dict[str, list[float]]:
        """Short human-readable view: {"action.mean": [first values...]}."""
        return {k: [round(float(x), 4) for x in v[: min(4, v.numel())]] for k, v in sorted(self.to_flat().items())}


def identity_stats(dim: int) -> dict[str, torch.Tensor]:
    """mean 0, std 1 for a feature of size `dim` (normalisation that changes nothing, up to eps)."""
    return {"mean": torch.zeros(dim), "std": torch.ones(dim)}
