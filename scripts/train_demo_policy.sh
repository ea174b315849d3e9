#!/usr/bin/env bash
# The recipe of the committed demo policy (assets/demo_policy), start to finish on a CPU:
#   1. `smolvla datagen`: scripted-expert demonstrations of two easy Meta-World tasks (64x64 images);
#   2. an initial random checkpoint of the "demo" architecture (smolvla.eval.recipe.demo_model_config);
#   3. `smolvla train` from it (every parameter trains; AdamW, 1000-step warmup, lr 5e-4, batch 8);
#   4. `smolvla eval` on held-out seeds (1000+), in-process;
#   5. copy the trained policy with provenance.json (recipe, losses, eval) to $WORK/demo_policy
#      (outputs/demo_recipe/demo_policy); only `--update-asset` replaces the committed assets/demo_policy.
# Values below must match smolvla.eval.recipe.DemoRecipe (a test checks it). Override with env vars, e.g.
#   STEPS=500 WORK=/tmp/recipe ASSET=/tmp/asset scripts/train_demo_policy.sh
#   scripts/train_demo_policy.sh --update-asset      # the full recipe, then overwrite assets/demo_policy
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/update_asset_flag.sh "$@"

BIN=${BIN:-.venv/bin}
WORK=${WORK:-outputs/demo_recipe}
TASKS=${TASKS:-button-press-topdown-v3,drawer-close-v3}
EPISODES=${EPISODES:-40}
STEPS=${STEPS:-4000}
BATCH=${BATCH:-8}
LR=${LR:-0.0005}
EVAL_EPISODES=${EVAL_EPISODES:-10}
WORKERS=${WORKERS:-2}
# The tracked asset is replaced only on request: a trial run must not dirty the repository.
if [ "$UPDATE_ASSET" = 1 ]; then ASSET=assets/demo_policy; else ASSET=${ASSET:-$WORK/demo_policy}; fi
export MUJOCO_GL=${MUJOCO_GL:-egl}

mkdir -p "$WORK"
if [ ! -f "$WORK/dataset/meta/info.json" ]; then
  "$BIN/smolvla" datagen metaworld --out "$WORK/dataset" --tasks "$TASKS" --episodes "$EPISODES" \
    --image-size 64 --workers "$WORKERS" --seed 0
fi
"$BIN/python" -c "from smolvla.eval.recipe import write_init_checkpoint; write_init_checkpoint('$WORK/init', seed=0)"
"$BIN/smolvla" train --preset finetune --freeze full --init checkpoint --init-path "$WORK/init" \
  --dataset "$WORK/dataset" --lr "$LR" --batch-size "$BATCH" --steps "$STEPS" --save-every "$STEPS" \
  --warmup-steps 1000 --decay-steps 30000 --log-every 50 --output-dir "$WORK/train"
CKPT="$WORK/train/checkpoints/$(printf %08d "$STEPS")/pretrained_model"
"$BIN/smolvla" eval --checkpoint "$CKPT" --tasks "$TASKS" --episodes "$EVAL_EPISODES" --seed 1000 \
  --max-steps 200 --workers "$WORKERS" --threads 1 --out "$WORK/eval"
"$BIN/python" - "$CKPT" "$WORK" "$ASSET" "$TASKS" "$EPISODES" "$STEPS" "$BATCH" "$LR" "$EVAL_EPISODES" <<'PY'
import sys
from pathlib import Path

from smolvla.eval.recipe import DemoRecipe, export_asset

ckpt, work, asset = (Path(a) for a in sys.argv[1:4])
tasks, episodes, steps, batch, lr, eval_episodes = sys.argv[4:]
recipe = DemoRecipe(
    tasks=tuple(tasks.split(",")), episodes_per_task=int(episodes), train_steps=int(steps),
    batch_size=int(batch), lr=float(lr), eval_episodes=int(eval_episodes),
)
print("asset:", export_asset(ckpt, work / "train", work / "eval" / "report.json", asset, recipe))
PY
