#!/usr/bin/env bash
# One GPU (or CPU): train CONFIG in WORKDIR; extra arguments are config overrides.
#   launch/single_gpu.sh configs/lovasz.py runs/lovasz --config.data.root=/data/covid-qu-ex
# Re-running the same command resumes from WORKDIR's last checkpoint.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG[:variant] WORKDIR [--config.x.y=v ...]" >&2; exit 2; }
config=$1 workdir=$2
shift 2
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec python -m jaxseg.main --config="$config" --workdir="$workdir" "$@"
