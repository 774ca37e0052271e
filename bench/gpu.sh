#!/usr/bin/env bash
# GPU benchmark, under 5 minutes on one H100/H200: the thesis U-Net (64 base channels, depth 5,
# 256×256) train step in jaxseg vs PyTorch (AMP bf16, channels_last), images/s and MFU from
# XLA's FLOP count. Needs jax (CUDA), flax, optax, orbax, chex, torch — no TensorFlow.
# ml_collections is not on the lent GPU image: put its wheel in .whl/ first
#   (python3 -m pip download --no-deps --only-binary=:all: -d .whl ml_collections).
# Usage: bash bench/gpu.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-/tmp}}"
if ! python3 -c "import ml_collections" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/jaxseg_site .whl/ml_collections-*.whl
  export PYTHONPATH="/tmp/jaxseg_site:${PYTHONPATH:-}"
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
peak=989  # dense bf16 TFLOP/s of an H100/H200 SXM
for batch in 8 64; do
  for dtype in float32 bfloat16; do
    python3 bench/bench_unet.py --batch "$batch" --dtype "$dtype" --channels-last --steps 20 --warmup 3 \
      --peak-tflops "$peak" | tee -a "$out/gpu_unet.txt"
  done
done
python3 bench/bench_unet.py --batch 64 --dtype bfloat16 --channels-last --steps 20 --warmup 3 \
  --peak-tflops "$peak" --json > "$out/gpu_unet.json"
