#!/usr/bin/env bash
# A whole thesis experiment: every arm (each with its trials), then the report.
#   launch/sweep.sh EXPERIMENT ROOT [--smoke|--demo] [--folds=K] [--config.x.y=v ...]
# EXPERIMENT: exp1 (Table 5: U-Net variants), exp2 (Table 6: Lovász vs Jaccard),
#             exp3-tversky (Table 7), exp3-bce (Table 8).
# Each arm trains in ROOT/<arm>; finished arms are skipped on a re-run (each run resumes
# from its checkpoint), then `python -m jaxseg.report` writes ROOT/report/.
# --smoke runs every arm's smoke variant (synthetic phantoms, about a minute each on CPU; learns nothing);
# --demo its demo variant (phantoms, CPU-sized model and epochs, a few minutes an arm: every arm learns).
# --folds=K cross-validates every arm (launch/cv.sh: ROOT/<arm>/fold_<k>); the report then gives each
# arm's mean (std) over folds, and `python -m jaxseg.aggregate ROOT/<arm>` its out-of-fold metrics.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 exp1|exp2|exp3-tversky|exp3-bce ROOT [--smoke|--demo] [--folds=K] [--config.x.y=v ...]" >&2; exit 2; }
experiment=$1 root=$2
shift 2
suffix=""
case "${1:-}" in --smoke|--demo) suffix=",${1#--}"; shift ;; esac
folds=""
case "${1:-}" in --folds=*) folds=${1#--folds=}; shift ;; esac
PY=${PY:-python}
case "$experiment" in
  exp1) arms=("unet_variants.py:unet" "unet_variants.py:attunet" "unet_variants.py:resattunet") ;;
  exp2) arms=("lovasz.py:" "jaccard.py:") ;;
  exp3-tversky) arms=("boundary_tversky.py:boundary" "boundary_tversky.py:tversky"
                      "boundary_tversky.py:constant" "boundary_tversky.py:linear") ;;
  exp3-bce) arms=("boundary_bce.py:boundary" "boundary_bce.py:bce" "boundary_bce.py:constant") ;;
  *) echo "unknown experiment '$experiment'; use exp1, exp2, exp3-tversky or exp3-bce" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")/.." && pwd)"
dirs=()
for arm in "${arms[@]}"; do
  file=${arm%%:*} variant=${arm#*:}
  name=${variant:-${file%.py}}
  spec="$variant$suffix"
  spec=${spec#,}
  echo "=== $experiment: $name" >&2
  if [ -n "$folds" ]; then
    PY="$PY" "$here/launch/cv.sh" "$here/configs/$file${spec:+:$spec}" "$root/$name" "$folds" "$@"
  else
    "$PY" -m jaxseg.main --config="$here/configs/$file${spec:+:$spec}" --workdir="$root/$name" "$@"
  fi
  dirs+=("$root/$name")
done
"$PY" -m jaxseg.report "${dirs[@]}" --output "$root/report"
