"""scripts/train_so101_policy.sh runs the committed SO-101 policy's recipe (data with recorded object positions,
training with the auxiliary loss, evaluation) into its work folder, and only --update-asset replaces the asset.
Run with stand-in `smolvla`/`python` executables that log their calls; the stand-in `datagen` and `train`
write a dataset and a policy folder where the real ones would."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_so101_policy.sh"
ASSET = REPO / "assets" / "so101_policy"
# the caller's settings of these would change the recipe under test
RECIPE_VARIABLES = {"ASSET", "STEPS", "EPISODES", "AUX", "NOISE", "SHIFT", "CONT_STEPS", "CONT_LR", "LR", "WARMUP"}

SMOLVLA_STUB = """#!/usr/bin/env bash
echo "smolvla $*" >> "{log}"
command=$1
while [ $# -gt 0 ]; do case "$1" in --output-dir|--out) out=$2 ;; esac; shift; done
if [ "$command" = datagen ]; then mkdir -p "$out/meta" && echo '{{}}' > "$out/meta/info.json"; fi
if [ "$command" = train ]; then
  policy="$out/checkpoints/last/pretrained_model"
  mkdir -p "$policy" && echo '{{}}' > "$policy/config.json"
fi
"""


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "smolvla").write_text(SMOLVLA_STUB.format(log=log))
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\necho "python $*" >> "{log}"\ncat > /dev/null\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    keep = {k: v for k, v in os.environ.items() if k not in RECIPE_VARIABLES}
    keep.update(BIN=str(bin_dir), WORK=str(tmp_path / "work"), **env)
    return subprocess.run(["bash", str(SCRIPT), *args], env=keep, capture_output=True, text=True, timeout=60)


def _calls(tmp_path: Path, command: str) -> list[str]:
    return [c for c in (tmp_path / "calls.log").read_text().splitlines() if c.startswith(f"smolvla {command} ")]


def test_default_run_is_the_recipe_and_leaves_the_asset_alone(tmp_path):
    result = _run(tmp_path, ASSET=str(tmp_path / "asset"))
    assert result.returncode == 0, result.stderr
    (datagen,) = _calls(tmp_path, "datagen")
    assert "--episodes 200 " in datagen and "--expert-noise 0.03 " in datagen and "--image-size 128 " in datagen
    scratch, cont = _calls(tmp_path, "train")
    assert "--aux-env-state 1.0 " in scratch and "--steps 5000 " in scratch and "--augment-shift 0 " in scratch
    assert "--init-path" not in scratch and "--lr 0.0003 " in scratch
    # the continuation starts from the first run's policy, on its own schedule, with the same loss
    assert f"--init-path {tmp_path}/work/run/checkpoints/last/pretrained_model " in cont
    assert "--steps 3000 " in cont and "--lr 0.0001 " in cont and "--aux-env-state 1.0 " in cont
    (evaluate,) = _calls(tmp_path, "eval")
    assert f"--checkpoint {tmp_path}/work/run_cont/checkpoints/last/pretrained_model " in evaluate
    assert "--episodes 20 " in evaluate and "--split id " in evaluate
    assert (tmp_path / "work" / "so101_policy" / "config.json").is_file()
    assert not (tmp_path / "asset").exists()


def test_no_continuation_evaluates_the_first_run(tmp_path):
    assert _run(tmp_path, CONT_STEPS="0").returncode == 0
    assert len(_calls(tmp_path, "train")) == 1
    (evaluate,) = _calls(tmp_path, "eval")
    assert f"--checkpoint {tmp_path}/work/run/checkpoints/last/pretrained_model " in evaluate


def test_update_asset_replaces_only_the_named_asset(tmp_path):
    mine = tmp_path / "asset"
    mine.mkdir()
    (mine / "stale.txt").write_text("old policy")
    result = _run(tmp_path, "--update-asset", ASSET=str(mine))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["config.json"]


def test_unknown_argument_is_refused(tmp_path):
    result = _run(tmp_path, "--overwrite")
    assert result.returncode == 2 and "unknown argument: --overwrite" in result.stderr
    assert not (tmp_path / "calls.log").exists()


def test_the_committed_asset_was_made_by_the_scripts_defaults():
    """provenance.json of assets/so101_policy names this script and the settings it ran with; they must be
    the script's defaults, so that running it reproduces the committed policy's recipe."""
    provenance = json.loads((ASSET / "provenance.json").read_text())
    assert provenance["recipe"]["script"] == "scripts/train_so101_policy.sh"
    text = SCRIPT.read_text()
    for name, value in provenance["recipe"]["env"].items():
        match = re.search(rf"\b{name}=\$\{{{name}:-([^}}]+)\}}", text)
        assert match, f"{name} has no default in {SCRIPT.name}"
        assert match.group(1) == value, f"{name}: script default {match.group(1)}, asset made with {value}"
