#!/usr/bin/env bash
# GPU benchmark, under 5 minutes on one H100/H200: the thesis U-Net (64 base channels, depth 5,
# 256×256) train step in jaxseg vs PyTorch (AMP bf16, channels_last), images/s and MFU from
# XLA's FLOP count. Needs jax (CUDA), flax, optax, orbax, chex, torch — no TensorFlow, no tqdm.
# ml_collections is not on the lent GPU image: put its wheel in .whl/ first
#   (python3 -m pip download --no-deps --only-binary=:all: -d .whl ml_collections)
# and carry .whl to the machine.
# Usage: bash bench/gpu.sh [--dry-run] [OUTPUT_DIR]
#   --dry-run: a tiny U-Net for one step on whatever device there is (checks the set-up in seconds;
#              PyTorch is skipped when it is not installed or JAXSEG_BENCH_NO_TORCH=1).
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
if [[ "${1:-}" == "--dry-run" ]]; then dry=1; shift; fi
out="${1:-${OUT:-/tmp}}"
mkdir -p "$out"
if ! python3 -c "import ml_collections" 2>/dev/null; then
  site="$(mktemp -d)"
  python3 -m pip install -q --no-index --no-deps --target "$site" .whl/ml_collections-*.whl
  export PYTHONPATH="$site:${PYTHONPATH:-}"
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
peak=989  # dense bf16 TFLOP/s of an H100/H200 SXM
model=(--steps 20 --warmup 3)
batches=(8 64)
if [[ $dry == 1 ]]; then
  model=(--features 8 --depth 3 --size 64 --steps 1 --warmup 1)
  batches=(2)
  if [[ "${JAXSEG_BENCH_NO_TORCH:-0}" == 1 ]] || ! python3 -c "import torch" 2>/dev/null; then
    model+=(--no-torch)
  fi
fi
for batch in "${batches[@]}"; do
  for dtype in float32 bfloat16; do
    json=()  # the last run (largest batch, bf16: the target's setting) also writes gpu_unet.json
    if [[ $batch == "${batches[-1]}" && $dtype == bfloat16 ]]; then json=(--json-out "$out/gpu_unet.json"); fi
    python3 bench/bench_unet.py "${model[@]}" --batch "$batch" --dtype "$dtype" --channels-last \
      --peak-tflops "$peak" "${json[@]}" | tee -a "$out/gpu_unet.txt"
  done
done
echo "wrote $out/gpu_unet.txt and $out/gpu_unet.json"
