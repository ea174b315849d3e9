"""Skip simulator tests cleanly where the optional packages or headless rendering are missing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import smolvla.envs  # noqa: F401  (before any simulator import: it selects the headless GL backend)


def _require_sim(module: str) -> None:
    """Skip unless `module` imports and MuJoCo can render offscreen here."""
    pytest.importorskip(module)
    from smolvla.envs.rendering import rendering_available

    if not rendering_available():
        pytest.skip("MuJoCo offscreen rendering unavailable (install GL libs: scripts/install_sim_system_deps.sh)")


@pytest.fixture(scope="session")
def require_sim() -> Callable[[str], None]:
    """`require_sim("metaworld")` inside a test or fixture skips it when that simulator cannot run here."""
    return _require_sim
