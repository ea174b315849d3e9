"""scripts/train_demo_policy.sh writes its policy under the work folder; only --update-asset touches the
committed assets/demo_policy. Run with stand-in `smolvla`/`python` executables that only log their calls."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_demo_policy.sh"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    for name in ("smolvla", "python"):  # log the arguments, swallow a heredoc on stdin
        stub = bin_dir / name
        stub.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "{log}"\ncat > /dev/null\n')
        stub.chmod(0o755)
    full_env = {k: v for k, v in os.environ.items() if k != "ASSET"}
    full_env.update(BIN=str(bin_dir), WORK=str(tmp_path / "work"), **env)
    return subprocess.run(["bash", str(SCRIPT), *args], env=full_env, capture_output=True, text=True, timeout=60)


def _export_destination(tmp_path: Path) -> str:
    (export,) = [line for line in (tmp_path / "calls.log").read_text().splitlines() if line.startswith("python - ")]
    return export.split()[4]  # python - CKPT WORK ASSET ...


def test_default_run_leaves_the_committed_asset_alone(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert _export_destination(tmp_path) == f"{tmp_path / 'work'}/demo_policy"


def test_update_asset_flag_and_asset_variable(tmp_path):
    assert _run(tmp_path, "--update-asset").returncode == 0
    assert _export_destination(tmp_path) == "assets/demo_policy"
    (tmp_path / "calls.log").unlink()
    assert _run(tmp_path, ASSET=str(tmp_path / "mine")).returncode == 0
    assert _export_destination(tmp_path) == str(tmp_path / "mine")


def test_unknown_argument_is_refused(tmp_path):
    result = _run(tmp_path, "--overwrite")
    assert result.returncode == 2 and "unknown argument: --overwrite" in result.stderr
    assert not (tmp_path / "calls.log").exists()
