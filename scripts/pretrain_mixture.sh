#!/usr/bin/env bash
# Stage 1 of the two-stage recipe (docs/mixtures.md): pretrain a CPU-size SmolVLA on a mixture.
#   Architecture: the paper's (SigLIP-style vision tower, pixel-shuffle connector, truncated decoder,
#   interleaved cross/self-attention action expert, flow matching) at the "so101" size (3.6M parameters,
#   128x128 views in 16 px patches; "small" is the 10M option). No pretrained backbone exists offline, so
#   every part trains (--freeze full): the pretrain_mixture preset refuses to train behind a frozen random vision encoder.
#   Every dataset of the mixture keeps its own normalisation; cameras map to image1/2/3 as mix.json says.
# Usage: scripts/pretrain_mixture.sh [MIX]    (MIX from scripts/make_community_corpus.sh)
#   env: OUT, MODEL, STEPS, BATCH, LR, THREADS (1 if other jobs share the cores), CACHE_MB, AUG_SHIFT
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
MIX=${1:-outputs/corpus/mix.json}
OUT=${OUT:-outputs/stage1}
MODEL=${MODEL:-so101}
STEPS=${STEPS:-6000}
BATCH=${BATCH:-32}
LR=${LR:-0.0005}
THREADS=${THREADS:-2}
CACHE_MB=${CACHE_MB:-3072}  # decoded frames kept in memory (128 px: ~100 kB per frame of two cameras)
AUG_SHIFT=${AUG_SHIFT:-8}
SAVE_EVERY=${SAVE_EVERY:-500}

RESUME=()
[ -e "$OUT/checkpoints/last" ] && RESUME=(--resume)  # a stopped run continues where it was
"$BIN/smolvla" train --preset pretrain_mixture --freeze full --model-preset "$MODEL" --max-task-tokens 48 \
  --mixture "$MIX" --steps "$STEPS" --batch-size "$BATCH" --lr "$LR" --decay-lr 0.00001 \
  --augment-shift "$AUG_SHIFT" --augment-brightness 0.1 --augment-contrast 0.1 \
  --num-threads "$THREADS" --cache-mb "$CACHE_MB" --save-every "$SAVE_EVERY" --keep-last-n 2 --log-every 50 \
  --output-dir "$OUT" "${RESUME[@]}"
echo "stage 1 checkpoint: $OUT/checkpoints/last/pretrained_model"
echo "next: scripts/finetune_so101.sh $OUT/checkpoints/last/pretrained_model"
