#!/usr/bin/env bash
# GPU benchmark, about 6 minutes on one H100/H200 (issue 18's GPU figures), most important first:
#   1. the thesis U-Net (64 base channels, depth 5, 256×256) train step, jaxseg vs PyTorch (AMP bf16,
#      channels_last): images/s and MFU from XLA's FLOP count, bf16 and fp32, batch 64 and 8;
#   2. the Lovász hinge fwd+bwd vs Berman's PyTorch code on the same GPU (bench/gpu_lovasz.py);
#   3. Experiment 1's validation metric set over 583 images of 256², and the MAHD of one image
#      (bench/bench_eval.py);
#   4. the exact EDT and the signed distance map vs scipy on the host (bench/bench_edt.py).
# Each part writes <OUTPUT_DIR>/gpu_<part>.txt as it goes (a part that fails is reported and the
# next one runs). Needs jax (CUDA), flax, optax, orbax, chex, scipy, torch — no TensorFlow, no tqdm.
# ml_collections is not on the lent GPU image: put its wheel in .whl/ first
#   (python3 -m pip download --no-deps --only-binary=:all: -d .whl ml_collections)
# and carry .whl to the machine.
# Usage: bash bench/gpu.sh [--dry-run] [OUTPUT_DIR]
#   --dry-run: tiny sizes, one step, on whatever device there is (checks the set-up in seconds;
#              PyTorch is skipped when it is not installed or JAXSEG_BENCH_NO_TORCH=1).
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
if [[ "${1:-}" == "--dry-run" ]]; then dry=1; shift; fi
out="${1:-${OUT:-/tmp}}"
mkdir -p "$out"
if ! python3 -c "import ml_collections" 2>/dev/null; then
  site="$(mktemp -d)"
  python3 -m pip install -q --no-index --no-deps --target "$site" .whl/ml_collections-*.whl || exit 1
  export PYTHONPATH="$site:${PYTHONPATH:-}"
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
peak=989  # dense bf16 TFLOP/s of an H100/H200 SXM
model=(--steps 20 --warmup 3)
batches=(64 8)
lovasz=(--repeats 20)
evaluation=()
edt=(--repeats 9 --rounds 2)
if [[ $dry == 1 ]]; then
  model=(--features 8 --depth 3 --size 64 --steps 1 --warmup 1)
  batches=(2)
  lovasz=(--repeats 1 --batch 2 --sizes 32)
  evaluation=(--images 3 --size 32 --batch 2 --mahd-repeats 1)
  edt=(--repeats 1 --rounds 1 --batch 2 --sizes 32 --kinds rectangle)
  if [[ "${JAXSEG_BENCH_NO_TORCH:-0}" == 1 ]] || ! python3 -c "import torch" 2>/dev/null; then
    model+=(--no-torch)
  fi
fi
failed=0
part() {  # part NAME COMMAND...: runs one part, its output also in $out/gpu_NAME.txt
  local name=$1; shift
  echo "== $name: $*"
  if ! "$@" 2>&1 | tee -a "$out/gpu_$name.txt"; then
    echo "== $name FAILED" | tee -a "$out/gpu_$name.txt"; failed=1
  fi
}
for batch in "${batches[@]}"; do
  for dtype in bfloat16 float32; do
    json=()  # the first run (largest batch, bf16: the target's setting) also writes gpu_unet.json
    if [[ $batch == "${batches[0]}" && $dtype == bfloat16 ]]; then json=(--json-out "$out/gpu_unet.json"); fi
    part unet python3 bench/bench_unet.py "${model[@]}" --batch "$batch" --dtype "$dtype" --channels-last \
      --peak-tflops "$peak" "${json[@]}"
  done
done
part lovasz python3 bench/gpu_lovasz.py "${lovasz[@]}"
part eval python3 bench/bench_eval.py "${evaluation[@]}"
part edt python3 bench/bench_edt.py "${edt[@]}"
echo "wrote $out/gpu_*.txt and $out/gpu_unet.json"
exit $failed
