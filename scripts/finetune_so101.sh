#!/usr/bin/env bash
# Stage 2 of the two-stage recipe (docs/mixtures.md): one multi-task policy for the three SO-101 tasks
# (pick-place, stacking, sorting), fine-tuned from the stage-1 checkpoint with --init checkpoint.
#   The mixture-trained checkpoint has the standard layout (image1-3, 32-dim padded vectors, no own
#   normalisation); fine-tuning gives the policy this dataset's layout (top + wrist cameras in view order,
#   6 joints) and statistics, keeping every weight. Everything trains (FREEZE=full): our VLM was pretrained
#   on a small corpus, not on web data, so the vision tower keeps learning the SO scenes.
#   INIT=scratch trains the same model on the same data from random weights: the paper's ablation.
# Usage: scripts/finetune_so101.sh [STAGE1_CHECKPOINT | scratch]
#   env: WORK, EPISODES (per task), STEPS, BATCH, LR, THREADS, CACHE_MB, FREEZE, MODEL (scratch only),
#        SHIFT (image shift augmentation, px), RUN (run folder; default WORK/finetuned or WORK/scratch),
#        NOISE (datagen --expert-noise, m: demonstrations that correct off-target approaches),
#        AUX (weight of the auxiliary object-position loss, `smolvla.train.aux_state`; 0 = off)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
INIT=${1:-outputs/stage1/checkpoints/last/pretrained_model}
WORK=${WORK:-outputs/so101}
EPISODES=${EPISODES:-50}
STEPS=${STEPS:-6000}
BATCH=${BATCH:-32}
LR=${LR:-0.0003}
WARMUP=${WARMUP:-200}  # given explicitly: both starts then share one schedule
THREADS=${THREADS:-2}
CACHE_MB=${CACHE_MB:-3072}  # decoded frames kept in memory (128 px: ~100 kB per frame of two cameras)
SAVE_EVERY=${SAVE_EVERY:-1000}
FREEZE=${FREEZE:-full}
MODEL=${MODEL:-so101}
SHIFT=${SHIFT:-8}
NOISE=${NOISE:-0}
AUX=${AUX:-0}
export MUJOCO_GL=${MUJOCO_GL:-egl}

DATA="$WORK/dataset_id"
if [ ! -f "$DATA/meta/info.json" ]; then
  "$BIN/smolvla" datagen so101 --tasks pick-place,stacking,sorting --split id --episodes "$EPISODES" \
    --image-size 128 --workers 2 --seed 0 --expert-noise "$NOISE" --out "$DATA"
fi
if [ "$INIT" = scratch ]; then
  START=(--preset tiny_cpu --model-preset "$MODEL" --max-task-tokens 48)
  RUN=${RUN:-$WORK/scratch}
else
  START=(--preset finetune --init checkpoint --init-path "$INIT")
  RUN=${RUN:-$WORK/finetuned}
fi
"$BIN/smolvla" train "${START[@]}" --freeze "$FREEZE" --dataset "$DATA" --steps "$STEPS" --batch-size "$BATCH" \
  --lr "$LR" --warmup-steps "$WARMUP" --decay-lr 0.00001 --augment-shift "$SHIFT" --num-threads "$THREADS" \
  --cache-mb "$CACHE_MB" --save-every "$SAVE_EVERY" --keep-last-n 3 \
  --aux-env-state "$AUX" --log-every 50 --output-dir "$RUN"
echo "policy: $RUN/checkpoints/last/pretrained_model"
