#!/usr/bin/env bash
# Stage 0 of the two-stage recipe (docs/mixtures.md): a community-style corpus made from our own simulators.
#   Small datasets from differently configured sims (SO-101 with cameras named laptop/phone/up/wrist, other
#   fps and image sizes; Meta-World tasks), some recorded with vague task strings ("Hold", "task 1") ->
#   `smolvla relabel --rules` restores the instructions from the known scene (the paper's annotation step)
#   -> OUT/mix.json, the mixture file for scripts/pretrain_mixture.sh. Variants whose tasks are not
#   registered are skipped and listed in OUT/corpus_report.json, with the seconds each variant took.
# Usage: scripts/make_community_corpus.sh [OUT]     env: EPISODES (per task and variant), WORKERS
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
OUT=${1:-outputs/corpus}
EPISODES=${EPISODES:-5}
WORKERS=${WORKERS:-2}
export MUJOCO_GL=${MUJOCO_GL:-egl}

start=$(date +%s)
"$BIN/python" -m smolvla.envs.corpus "$OUT" --episodes "$EPISODES" --workers "$WORKERS"
for rules in "$OUT"/relabel_rules/*.json; do
  [ -e "$rules" ] || continue
  "$BIN/smolvla" relabel "$OUT/$(basename "$rules" .json)" --rules "$rules"
done
echo "corpus in $OUT ($(( $(date +%s) - start )) s, report $OUT/corpus_report.json)"
echo "next: scripts/pretrain_mixture.sh $OUT/mix.json"
