#!/usr/bin/env bash
# Every visible GPU of one machine, data-parallel: the batch is sharded over a 1-D device mesh
# and BatchNorm sees the global batch (jaxseg/training/parallel.py). train.batch_size must be a multiple
# of the GPU count.
#   CUDA_VISIBLE_DEVICES=0,1,2,3 launch/multi_gpu.sh configs/unet_variants.py:attunet runs/att \
#       --config.train.batch_size=32 --config.data.root=/data/covid-qu-ex
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG[:variant] WORKDIR [--config.x.y=v ...]" >&2; exit 2; }
config=$1 workdir=$2
shift 2
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec python -m jaxseg.main --config="$config" --workdir="$workdir" "$@"
