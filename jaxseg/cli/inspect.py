"""``python -m jaxseg.inspect`` / ``jaxseg-inspect``: checkpoint inspection without loading data.

  python -m jaxseg.inspect PATH                 # a workdir, its checkpoints/ or checkpoints/latest|best
  python -m jaxseg.inspect PATH --step 120      # one step instead of the newest
  python -m jaxseg.inspect PATH --diff OTHER    # compare two checkpoints' parameters
  python -m jaxseg.inspect PATH --json          # machine-readable summary
  python -m jaxseg.inspect WORKDIR              # a multi-trial workdir: every trial + summary.json
  python -m jaxseg.inspect WORKDIR --trial 2    # one trial of it in full (the single-run view)

The library side is ``jaxseg.reporting.inspection``.
"""

from __future__ import annotations

import argparse
import json

from jaxseg.cli import entry
from jaxseg.errors import JaxsegError


def main(argv=None) -> int:
    from jaxseg.reporting import inspection

    parser = argparse.ArgumentParser(prog="python -m jaxseg.inspect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="workdir, its checkpoints/ folder, or checkpoints/latest|best")
    parser.add_argument("--step", type=int, default=None, help="step to show (default: newest)")
    parser.add_argument("--diff", metavar="OTHER", default=None, help="compare parameters with OTHER")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--trial", type=int, default=None, metavar="N",
                        help="multi-trial workdir: show trial N in full (default: every trial and summary.json)")
    args = parser.parse_args(argv)
    entry.quiet_absl()  # orbax warns that read-only managers will not save
    if args.trial is not None:
        manager_dir, workdir = inspection.locate_trial(args.path, args.trial)
    elif inspection.is_multi_trial(args.path):
        if args.step is not None or args.diff:
            raise JaxsegError(f"{args.path} is a multi-trial workdir: --step and --diff need one trial (--trial N)")
        summary = inspection.summarize_trials(args.path)
        print(json.dumps(summary, indent=2, default=str) if args.json else inspection.render_trials(summary))
        return 0
    else:
        manager_dir, workdir = inspection.locate(args.path)
    if args.diff:
        print(inspection.diff(manager_dir, inspection.locate(args.diff)[0]))
        return 0
    summary = inspection.summarize(manager_dir, workdir, args.step)
    print(json.dumps(summary, indent=2, default=str) if args.json else inspection.render(summary))
    return 0


def run(argv=None):
    entry.run(main, argv)


if __name__ == "__main__":
    run()
