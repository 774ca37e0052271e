"""``python -m jaxseg.report`` / ``jaxseg-report``: an experiment's tables and figures.

  python -m jaxseg.report runs/exp1_unet runs/exp1_attunet runs/exp1_resattunet [--output runs/report]

The library side is ``jaxseg.reporting.report`` (what each file holds).
"""

from __future__ import annotations

import argparse
import sys

from jaxseg.cli import entry


def main(argv=None) -> int:
    from jaxseg.reporting import report

    p = argparse.ArgumentParser(prog="python -m jaxseg.report", description=report.__doc__.split("\n\n")[0])
    p.add_argument("workdirs", nargs="+", help="one workdir per arm (a run, or a folder of trial_<t>/ runs)")
    p.add_argument("--output", default=None, help="output folder (default: report/ beside the first arm)")
    p.add_argument("--names", nargs="+", default=None, help="arm names (default: folder names)")
    p.add_argument("--no-figures", action="store_true", help="tables only (no data or checkpoints needed)")
    p.add_argument("--panels", type=int, default=3, help="images in predictions.png")
    p.add_argument("--max-images", type=int, default=64, help="validation images for figures")
    args = p.parse_args(argv)
    entry.quiet_absl()
    out = report.report(args.workdirs, args.output, args.names, not args.no_figures, args.panels,
                        args.max_images)
    print((out / "table.md").read_text())
    print(f"written to {out}", file=sys.stderr)
    return 0


def run(argv=None):
    entry.run(main, argv, tensorflow=True)


if __name__ == "__main__":
    run()
