"""``python -m jaxseg.aggregate`` / ``jaxseg-aggregate``: the thesis's aggregate of several runs.

  python -m jaxseg.aggregate RUN_DIR… [--last 5] [--reduce median] [--preset experiment1] [--json]

Prints one line per metric: mean, std, runs. The rule is ``jaxseg.training.aggregate``'s.
"""

from __future__ import annotations

import argparse
import json

from jaxseg.cli import entry


def main(argv=None) -> int:
    from jaxseg.training import aggregate

    parser = argparse.ArgumentParser(prog="python -m jaxseg.aggregate", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories or metrics.jsonl files")
    parser.add_argument("--preset", choices=sorted(aggregate.PRESETS))
    parser.add_argument("--last", type=int, default=5)
    parser.add_argument("--reduce", choices=["median", "mean"], default="median")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    rule = aggregate.PRESETS[args.preset] if args.preset else {"last": args.last, "reduce": args.reduce}
    result = aggregate.aggregate(args.runs, **rule)
    if args.json:
        print(json.dumps(result))
        return 0
    for key, r in result.items():
        print(f"{key:40s} {r['mean']:.4f} ± {r['std']:.4f}  (runs={r['runs']})")
    return 0


def run(argv=None):
    entry.run(main, argv)


if __name__ == "__main__":
    run()
