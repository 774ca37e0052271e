"""Run guards: graceful preemption (SIGTERM/SIGINT) and the non-finite loss policy.

* ``PreemptionGuard`` turns SIGTERM and SIGINT into a flag the training loop polls
  after every step; the loop then saves a checkpoint at the exact step and exits,
  and the same command resumes there. A second signal exits at once.
  The flag is per process. In a multi-process run (``launch/local_multiprocess.sh``,
  ``launch/slurm.sbatch``) a signal may reach only one process, so the loop makes it
  everyone's: each step carries every process's flag into the jitted step
  (``parallel.process_flags``) and returns their OR; all processes read it one step
  later and save that same step together (``loop.train_epoch``); at an epoch's end
  ``parallel.any_process`` agrees in the same way.
* ``NonFiniteError``: raised when a step produced a NaN/Inf loss or gradient and
  ``config.train.nonfinite`` is ``'stop'``; the bad update is never applied
  (the step function keeps the previous parameters), so the last checkpoint and
  the state in memory are both good.
"""

from __future__ import annotations

import signal
import sys

from jaxseg.errors import NonFiniteError

__all__ = ["NonFiniteError", "PreemptionGuard"]


class PreemptionGuard:
    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:  # second signal: give up waiting (the CLI exits 130)
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\nreceived {signal.Signals(signum).name}: saving a checkpoint after this step…",
              file=sys.stderr, flush=True)

    def __enter__(self):
        for s in self.SIGNALS:
            try:
                self._previous[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for s, h in self._previous.items():
            signal.signal(s, h)
        return False
