"""``python -m jaxseg.prepare`` / ``jaxseg-prepare``: a dataset's streaming shards, built ahead of time.

  python -m jaxseg.prepare --config=configs/default.py --config.data.name=folder --config.data.root=data/x
  python -m jaxseg.prepare --config=configs/unet_variants.py --config.data.root=/data/covid-qu-ex

Takes the trainer's ``--config`` (and ``--config.<path>=<value>`` overrides) and
writes the shards that a streaming run of that config reads
(``config.data.in_memory=False``, or ``'auto'`` over the memory budget) under
``<cache_dir>/shards/`` (``jaxseg.data.streaming``), with a progress bar. Shards
that are up to date (same files, same shaping parameters) are reused: the
command then only says where they are. Training builds missing shards itself;
preparing first keeps a multi-host run from building them on every host.
"""

from __future__ import annotations

import sys

from absl import app, flags

from jaxseg.cli import entry
from jaxseg.cli.config_flag import CONFIG, none_strings_to_none

_CONFIG = CONFIG
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar while writing.")


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from jaxseg.data import streaming
    from jaxseg.training.config_check import validate_config

    config = _CONFIG.value
    none_strings_to_none(config)
    validate_config(config)  # the trainer's checks: a config that could not train is not prepared
    streaming.in_memory_setting(config.data)
    streaming.memory_budget_bytes(config.data)
    print(streaming.prepare_command(config, progress=_PROGRESS.value))
    return 0


def run():
    sys.modules["__main__"].__doc__ = __doc__  # absl's --help prints the __main__ module's docstring
    flags.mark_flags_as_required(["config"])
    app.run(lambda argv: entry.run(main, argv))


if __name__ == "__main__":
    run()
