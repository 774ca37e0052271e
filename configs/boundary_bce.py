"""Experiment 3 (thesis appendix Table 8): Boundary and weighted BCE losses on whole-slide histopathology.

  python -m jaxseg.main --config=configs/boundary_bce.py:constant --workdir=runs/exp3_bce_constant \\
      --config.data.root=/data/koranyi
Arms: ``boundary``, ``bce`` and ``constant`` (default); append ``,smoke`` (a minute) or ``,demo``
(a few minutes on a CPU, learns: ``configs/default.py``'s ``make_demo``).

Table 8, value by value: as Table 7 (configs/boundary_tversky.py) for the shared
set-up, and
  boundary  lr 1e-5, 100 epochs, 1 trial
  bce       lr 1e-4, 100 epochs, 5 trials, weighted BCE with positive weight 0.7
  constant  lr 1e-5, 100 epochs, 1 trial, 0.5·Boundary + 0.5·weighted BCE (0.7),
            constant update rule, distance map bounds 128, rescale factor 128
Reported: the mean of the last 3 epochs' validation values.
"""

from configs import default
from configs.boundary_tversky import experiment3

WEIGHTED_BCE = dict(name="weighted_bce", pos_weight=0.7)

ARMS = {
    "boundary": dict(schedule=None, lr=1e-5, epochs=100, trials=1),
    "bce": dict(schedule=None, lr=1e-4, epochs=100, trials=5),
    "constant": dict(schedule=dict(kind="constant", alpha=0.5), lr=1e-5, epochs=100, trials=1),
}


def get_config(arg=None):
    arm, size = default.parse_arg(arg, tuple(ARMS), "constant")
    return experiment3(arm, WEIGHTED_BCE, size=size, **ARMS[arm])
