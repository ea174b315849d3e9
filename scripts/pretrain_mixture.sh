#!/usr/bin/env bash
# Stage 1 of the two-stage recipe (docs/mixtures.md): pretrain a CPU-size SmolVLA on a mixture.
#   Architecture: the paper's (SigLIP-style vision tower, pixel-shuffle connector, truncated decoder,
#   interleaved cross/self-attention action expert, flow matching) at the "small" size (~10M parameters,
#   64x64 views). No pretrained backbone exists offline, so every part trains (--freeze full): the
#   pretrain_mixture preset refuses to train behind a frozen random vision encoder.
#   Every dataset of the mixture keeps its own normalisation; cameras map to image1/2/3 as mix.json says.
# Usage: scripts/pretrain_mixture.sh [MIX]    (MIX from scripts/make_community_corpus.sh)
#   env: OUT, MODEL, STEPS, BATCH, LR, THREADS (1 if other jobs share the cores), AUG_SHIFT
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
MIX=${1:-outputs/corpus/mix.json}
OUT=${OUT:-outputs/stage1}
MODEL=${MODEL:-small}
STEPS=${STEPS:-6000}
BATCH=${BATCH:-32}
LR=${LR:-0.0005}
THREADS=${THREADS:-2}
AUG_SHIFT=${AUG_SHIFT:-4}
SAVE_EVERY=${SAVE_EVERY:-500}

RESUME=()
[ -e "$OUT/checkpoints/last" ] && RESUME=(--resume)  # a stopped run continues where it was
"$BIN/smolvla" train --preset pretrain_mixture --freeze full --model-preset "$MODEL" --max-task-tokens 48 \
  --mixture "$MIX" --steps "$STEPS" --batch-size "$BATCH" --lr "$LR" --decay-lr 0.00001 \
  --augment-shift "$AUG_SHIFT" --augment-brightness 0.1 --augment-contrast 0.1 \
  --num-threads "$THREADS" --save-every "$SAVE_EVERY" --keep-last-n 2 --log-every 50 \
  --output-dir "$OUT" "${RESUME[@]}"
echo "stage 1 checkpoint: $OUT/checkpoints/last/pretrained_model"
echo "next: scripts/finetune_so101.sh $OUT/checkpoints/last/pretrained_model"
