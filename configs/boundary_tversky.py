"""Experiment 3 (thesis §6.2.2, appendix Table 7): Boundary and Tversky losses on whole-slide histopathology.

  python -m jaxseg.main --config=configs/boundary_tversky.py:linear --workdir=runs/exp3_linear \\
      --config.data.root=/data/koranyi
Arms: ``boundary``, ``tversky``, ``constant`` (default) and ``linear``; append ``,smoke`` (a minute) or ``,demo``
(a few minutes on a CPU, learns: ``configs/default.py``'s ``make_demo``).

Table 7, value by value (all arms): Adam β1 0.9, β2 0.999; batch size 8; crop
size 256; crop validation images; U-Net; non-uniform sampling; random pick;
rotation limit 180; sampling "positives only"; shuffle validation data;
validation split 0.2; weight decay 0.
  boundary  lr 1e-5, 100 epochs, 1 trial
  tversky   lr 1e-4, 200 epochs, 5 trials, FN weight 0.7, FP weight 0.3
  constant  lr 1e-5, 100 epochs, 1 trial, 0.5·Boundary + 0.5·Tversky(0.7, 0.3),
            distance map bounds 128, rescale factor 128
  linear    as constant, with the "linear rebalance" update rule: every 20 epochs
            0.2 of the weight moves to the boundary term (regional weight ≥ 0.1)
Reported: the mean of the last 3 epochs' validation values.
Not in the table (our choices): U-Net width 64, depth 5; binary task (any
non-zero label is tumour).
"""

import ml_collections

from configs import default

TVERSKY = dict(name="tversky", alpha=0.7, beta=0.3)
BOUNDARY_BOUNDED = dict(name="boundary", clamp=128.0, rescale=128.0)


def experiment3(arm: str, regional: dict, schedule: dict | None, lr: float, epochs: int, trials: int,
                size: str) -> ml_collections.ConfigDict:
    """The shared Table 7/8 set-up with one arm's loss, learning rate, epochs and trials."""
    c = default.get_config()
    c.data.name, c.data.image_size, c.data.val_fraction = "histopathology", 256, 0.2
    c.data.augment, c.data.random_pick, c.data.rotation_limit = True, True, 180.0
    c.data.sampling = "positives"
    c.model.name, c.model.features, c.model.depth = "unet", 64, 5
    if arm == "boundary":
        c.loss = ml_collections.ConfigDict(dict(name="boundary"))
    elif schedule is None:
        c.loss = ml_collections.ConfigDict(regional)
    else:
        c.loss = ml_collections.ConfigDict(dict(terms=[regional, BOUNDARY_BOUNDED], combine="convex",
                                                schedule=schedule))
    c.optimizer.update(dict(name="adam", learning_rate=lr, b1=0.9, b2=0.999, weight_decay=0.0))
    c.train.epochs, c.train.batch_size, c.train.num_trials = epochs, 8, trials
    c.eval.metrics = ("mahd", "dice", "jaccard", "average_precision")
    c.eval.aggregate.update(dict(last=3, reduce="mean"))
    return default.resize(c, size)


ARMS = {
    "boundary": dict(schedule=None, lr=1e-5, epochs=100, trials=1),
    "tversky": dict(schedule=None, lr=1e-4, epochs=200, trials=5),
    "constant": dict(schedule=dict(kind="constant", alpha=0.5), lr=1e-5, epochs=100, trials=1),
    "linear": dict(schedule=dict(kind="rebalance", alpha=0.5, every=20, step=0.2, floor=0.1),
                   lr=1e-5, epochs=100, trials=1),
}


def get_config(arg=None):
    arm, size = default.parse_arg(arg, tuple(ARMS), "constant")
    return experiment3(arm, TVERSKY, size=size, **ARMS[arm])
