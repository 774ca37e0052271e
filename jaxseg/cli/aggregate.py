"""``python -m jaxseg.aggregate`` / ``jaxseg-aggregate``: the thesis's aggregate of several runs.

  python -m jaxseg.aggregate RUN_DIR… [--last 5] [--reduce median] [--preset experiment1] [--json]
  python -m jaxseg.aggregate CV_ROOT [--last 5] ...      # a cross-validation root (fold_<k>/ workdirs)

Prints one line per metric: mean, std, runs. The rule is ``jaxseg.training.aggregate``'s. On a
cross-validation root (``launch/cv.sh``): the cross-validated mean ± std over folds and the
out-of-fold metrics over the whole training set (``jaxseg.training.crossval``), also written to
``CV_ROOT/cv_summary.json``.
"""

from __future__ import annotations

import argparse
import json

from jaxseg.cli import entry


def main(argv=None) -> int:
    from jaxseg.training import aggregate, crossval

    parser = argparse.ArgumentParser(prog="python -m jaxseg.aggregate", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories or metrics.jsonl files")
    parser.add_argument("--preset", choices=sorted(aggregate.PRESETS))
    parser.add_argument("--last", type=int, default=None,
                        help="epochs per run to reduce (default 5; a CV root: its config.eval.aggregate)")
    parser.add_argument("--reduce", choices=["median", "mean"], default=None,
                        help="median (default) or mean (a CV root: its config.eval.aggregate)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    rule = aggregate.PRESETS[args.preset] if args.preset else {"last": args.last, "reduce": args.reduce}
    if len(args.runs) == 1 and crossval.is_cv_root(args.runs[0]):
        return _print_cv(crossval.summarize(args.runs[0], **rule), args.json)
    rule = {"last": 5 if rule["last"] is None else rule["last"], "reduce": rule["reduce"] or "median"}
    result = aggregate.aggregate(args.runs, **rule)
    if args.json:
        print(json.dumps(result))
        return 0
    for key, r in result.items():
        print(f"{key:40s} {r['mean']:.4f} ± {r['std']:.4f}  (runs={r['runs']})")
    return 0


def _print_cv(summary: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(summary))
        return 0
    print(f"cross-validated over folds {summary['folds']} (mean ± std over folds):")
    for key, r in summary["cross_validated"].items():
        print(f"  {key:38s} {r['mean']:.4f} ± {r['std']:.4f}")
    print("out of fold (every example validated once, statistics pooled over the folds):")
    for key, r in summary["out_of_fold"].items():
        spread = f" ± {r['std']:.4f}  (trials={r['trials']})" if r["trials"] > 1 else ""
        print(f"  {key:38s} {r['mean']:.4f}{spread}")
    return 0


def run(argv=None):
    entry.run(main, argv)


if __name__ == "__main__":
    run()
