#!/usr/bin/env bash
# K-fold cross-validation of one config: fold k of K trains in ROOT/fold_<k> (config.data.num_folds=K,
# config.data.fold=k), then `python -m jaxseg.aggregate ROOT` prints (and writes ROOT/cv_summary.json)
# the cross-validated mean ± std over folds and the out-of-fold metrics over the whole training set.
#   launch/cv.sh CONFIG ROOT K [--config.x.y=v ...]
# e.g. launch/cv.sh configs/default.py runs/cv5 5
#      launch/cv.sh configs/lovasz.py:demo /tmp/cv 3
# A finished fold resumes as finished (its checkpoint is at the last epoch), so a re-run completes what
# is missing. Predict with the folds' ensemble: python -m jaxseg.predict --workdir=ROOT INPUT...
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CONFIG ROOT K [--config.x.y=v ...]" >&2; exit 2; }
config=$1 root=$2 folds=$3
shift 3
[[ "$folds" =~ ^[0-9]+$ ]] && [ "$folds" -ge 2 ] || { echo "K must be an integer ≥ 2, got '$folds'" >&2; exit 2; }
PY=${PY:-python}
for ((k = 0; k < folds; k++)); do
  echo "=== fold $k of $folds" >&2
  "$PY" -m jaxseg.main --config="$config" --workdir="$root/fold_$k" \
    --config.data.num_folds="$folds" --config.data.fold="$k" "$@"
done
"$PY" -m jaxseg.aggregate "$root"
