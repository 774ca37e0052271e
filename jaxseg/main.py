"""Command-line trainer.

  python -m jaxseg.main --config=configs/default.py --workdir=runs/x [--config.train.epochs=3]

``--config`` takes a config file with ``get_config(arg)``; ``file.py:arg`` picks a
variant (e.g. ``configs/lovasz.py:smoke``). Any field can be overridden with
``--config.<path>=<value>``; unknown fields and wrong types are rejected.
Running again on a workdir that holds a checkpoint resumes from it.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file (file.py[:variant]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and metrics.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines would drown the progress bar
    from jaxseg import experiments
    from jaxseg.config_check import ConfigError
    from jaxseg.data.errors import DataError
    from jaxseg.guards import NonFiniteError

    try:
        record = experiments.run(_CONFIG.value, _WORKDIR.value)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, NonFiniteError) as e:  # the file or the step is named in the message
        print(f"error: {e}", file=sys.stderr)
        return 3
    for r in record if isinstance(record, list) else [record]:
        if r:
            print("final: " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in r.items()))
    return 0


def run():
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)


if __name__ == "__main__":
    run()
