"""``python -m jaxseg.main`` / ``jaxseg-train``: the command-line trainer.

  python -m jaxseg.main --config=configs/default.py --workdir=runs/x [--config.train.epochs=3]

``--config`` takes a config file with ``get_config(arg)``; ``file.py:arg`` picks a
variant (e.g. ``configs/lovasz.py:smoke``). Any field can be overridden with
``--config.<path>=<value>``; unknown fields and wrong types are rejected.
Running again on a workdir that holds a checkpoint resumes from it; a config
with ``train.num_trials > 1`` trains every trial (``jaxseg.training.trials``).
"""

from __future__ import annotations

import sys

from absl import app, flags

from jaxseg.cli import entry
from jaxseg.cli.config_flag import CONFIG, none_strings_to_none

_CONFIG = CONFIG
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and metrics.")


def format_record(record: dict) -> str:
    return "final: " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in record.items())


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    entry.quiet_absl("warning")
    from jaxseg.training import trials

    none_strings_to_none(_CONFIG.value)
    record = trials.run(_CONFIG.value, _WORKDIR.value)
    import jax  # started by the trainer: several processes report once, from process 0

    for r in (record if isinstance(record, list) else [record]) if jax.process_index() == 0 else []:
        if r:
            print(format_record(r))
    return 0


def run():
    sys.modules["__main__"].__doc__ = __doc__  # absl's --help prints the __main__ module's docstring
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(lambda argv: entry.run(main, argv))  # the trainer imports TensorFlow (off GPUs) once the config checks


if __name__ == "__main__":
    run()
