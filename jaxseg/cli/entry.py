"""What every command does around its ``main``: configure the process, then turn errors into exit codes.

``run(main, argv)`` calls ``jaxseg.runtime.configure_process`` (XLA:CPU kernels
before JAX starts; TensorFlow kept off accelerators), runs ``main(argv) -> int``
and exits with its code. A ``jaxseg.errors.JaxsegError`` becomes one line
``error: <message>`` on stderr and the error's ``exit_code``; Ctrl-C twice
(the trainer saves on the first) exits with 130. No traceback for either.
"""

from __future__ import annotations

import sys
from typing import Callable, NoReturn, Sequence

from jaxseg import runtime
from jaxseg.errors import JaxsegError


def quiet_absl(level: str = "error") -> None:
    """orbax/absl INFO and WARNING lines would drown progress bars and results."""
    from absl import logging

    logging.set_verbosity(getattr(logging, level.upper()))


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
        tensorflow: bool = False) -> NoReturn:
    runtime.configure_process(tensorflow=tensorflow)
    try:
        code = main(argv)
    except JaxsegError as e:
        print(f"error: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code or 0)
