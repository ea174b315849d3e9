"""smolvla: an offline-first SmolVLA vision-language-action policy.

`smolvla.SmolVLAPolicy` is resolved lazily so that torch-free parts of the package (the robot-side
client in `smolvla.serve`) import without torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["SmolVLAPolicy", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "SmolVLAPolicy":
        from smolvla.policy.policy import SmolVLAPolicy

        return SmolVLAPolicy
    raise AttributeError(f"module 'smolvla' has no attribute {name!r}")
