#!/usr/bin/env bash
# GPU readiness check, under 8 minutes on one CUDA GPU; writes one JSON per step and a summary:
#
#   benchmarks/gpu_check.sh [OUT_DIR]        # default outputs/gpu_check; PY=.venv/bin/python by default
#
#   latency.json            full size, 2 cameras 512x512, chunk 50, 10 steps: torch fp32 and bf16
#   train_expert_only.json  full-size training throughput, bf16 autocast, batch 32, expert_only
#   train_full.json         the same with every parameter trained
#   finetune/               a two-minute fine-tune (full size, finetune preset: expert_only, bf16) on a
#                           generated dataset: Meta-World scripted episodes (`smolvla datagen`), or synthetic
#                           frames where the simulator cannot render; metrics.jsonl holds the loss curve
#   gpu_check.json          the above gathered, with the GPU's name and each step's wall time
#
# Without a CUDA device it stops at once (exit 2) saying so; each step has its own time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-outputs/gpu_check}
mkdir -p "$OUT"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA device (torch.cuda.is_available() is False for $PY); run this on a GPU machine" >&2
  exit 2
fi

declare -A WALL
step() {  # step NAME LIMIT_S COMMAND...: stdout to $OUT/NAME.json, wall time recorded
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)" >&2
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.json"
  WALL[$name]=$((SECONDS - start))
  echo "   ${WALL[$name]} s" >&2
}

step latency 120 "$PY" benchmarks/latency.py --device cuda --engines torch-fp32,torch-bf16 --repeats 5 --warmup 2
for freeze in expert_only full; do
  step "train_$freeze" 100 "$PY" benchmarks/train_throughput.py --preset finetune --model-preset smolvla_base \
    --device cuda --bf16 --batch-size 32 --freeze "$freeze" --image-size 512 --episodes 4 --length 40 \
    --steps 20 --warmup 5 --num-workers 4
done

DATA="$OUT/finetune_data"
rm -rf "$DATA" "$OUT/finetune" "$OUT/finetune_init"
start=$SECONDS
if ! MUJOCO_GL=${MUJOCO_GL:-egl} timeout 90 "$PY" -m smolvla.cli.main datagen metaworld --out "$DATA" \
  --tasks reach-v3,button-press-topdown-v3 --episodes 10 --image-size 128 --workers 4 >&2; then
  echo "   datagen failed (no simulator rendering?): synthetic frames instead" >&2
  rm -rf "$DATA"
  "$PY" -c 'import sys, runpy
from pathlib import Path
runpy.run_path("benchmarks/train_throughput.py")["write_dataset"](Path(sys.argv[1]), 128, episodes=8, length=60)' "$DATA"
fi
WALL[finetune_data]=$((SECONDS - start))
# Fine-tuning starts from trained weights (the finetune preset requires --init): none are available offline,
# so a two-step full-size scratch run writes the checkpoint it starts from (the same CLI path as a real one).
start=$SECONDS
timeout 90 "$PY" -m smolvla.cli.main train --dataset "$DATA" --init scratch --model-preset smolvla_base \
  --freeze full --device cuda --mixed-precision bf16 --batch-size 4 --steps 2 --save-every 2 --log-every 1 \
  --output-dir "$OUT/finetune_init" >&2
WALL[finetune_init]=$((SECONDS - start))
# The run is cut at two minutes by design: metrics.jsonl holds its loss curve up to there.
start=$SECONDS
timeout 120 "$PY" -m smolvla.cli.main train --preset finetune --dataset "$DATA" --init checkpoint \
  --init-path "$OUT/finetune_init/checkpoints/last/pretrained_model" --device cuda --mixed-precision bf16 \
  --batch-size 32 --steps 3000 --log-every 10 --save-every 100000 --num-workers 4 \
  --output-dir "$OUT/finetune" >&2 || [ $? -eq 124 ]
WALL[finetune]=$((SECONDS - start))

walls=$(for k in "${!WALL[@]}"; do printf '"%s": %s,' "$k" "${WALL[$k]}"; done)
"$PY" - "$OUT" "{${walls%,}}" <<'EOF' | tee "$OUT/gpu_check.json"
import json, sys
from pathlib import Path

import torch

out, walls = Path(sys.argv[1]), json.loads(sys.argv[2])
records = [json.loads(line) for line in (out / "finetune" / "metrics.jsonl").read_text().splitlines() if line]
losses = [r for r in records if "loss" in r]
summary = {
    "benchmark": "gpu_check",
    "gpu": torch.cuda.get_device_name(),
    "torch": torch.__version__,
    "wall_s": walls,
    "latency": json.loads((out / "latency.json").read_text()),
    "train_expert_only": json.loads((out / "train_expert_only.json").read_text()),
    "train_full": json.loads((out / "train_full.json").read_text()),
    "finetune": {
        "steps": losses[-1]["step"] if losses else 0,
        "first": losses[0] if losses else None,
        "last": losses[-1] if losses else None,
    },
}
print(json.dumps(summary, indent=2))
EOF
