"""The ``--config`` flag the trainer and ``jaxseg.prepare`` share (one absl flag per process may hold the name).

``CONFIG`` takes a config file with ``get_config(arg)`` (``file.py:arg`` picks a
variant) and ``--config.<path>=<value>`` overrides; ``none_strings_to_none``
turns the string 'None' into None where a field may be None.
"""

from __future__ import annotations

from ml_collections import config_flags

CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (file.py[:variant]).", lock_config=True)


def none_strings_to_none(config) -> None:
    """``--config.x=None`` gives the string 'None' for a string field; where the field may be None
    (a placeholder), it becomes None — what the user meant."""
    for key in list(config.keys()):
        value = config[key]
        if hasattr(value, "keys"):
            none_strings_to_none(value)
        elif isinstance(value, str) and value == "None":
            try:
                config[key] = None
            except TypeError:  # a field that must be a string: config_check names the bad value
                pass
