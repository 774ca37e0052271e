"""Default config: the synthetic infection task with a small U-Net.

Runs on the built-in phantoms in about two minutes on 2 CPU cores
(see README, "Quick start"). Every thesis config builds on this one.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.name = "synthetic"
    c.data.root = ""
    c.data.task = "infection"
    c.data.image_size = 64
    c.data.num_train = 384
    c.data.num_val = 96
    c.data.seed = 0  # the phantoms' seed (fixed across trials: same data, different init)
    c.data.val_fraction = ml_collections.config_dict.placeholder(float)

    c.model = ml_collections.ConfigDict()
    c.model.name = "unet"
    c.model.num_classes = 1
    c.model.features = 8
    c.model.depth = 4
    c.model.batch_norm = True
    c.model.dropout = 0.0
    c.model.upsample = "nearest"
    c.model.weight_init = "he_normal"
    c.model.fan_mode = "fan_in"

    c.loss = ml_collections.ConfigDict()
    c.loss.name = "dice"
    c.loss.batchwise = True

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.weight_decay = 0.0

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 12
    c.train.batch_size = 16
    c.train.num_trials = 1
    c.train.dtype = "float32"
    c.train.log_every = 10
    c.train.progress = True
    c.train.nonfinite = "stop"  # 'stop' | 'skip': a NaN/Inf loss or gradient stops the run, or the step is skipped

    c.eval = ml_collections.ConfigDict()
    c.eval.metrics = ("dice", "jaccard")
    c.eval.threshold = 0.5
    c.eval.checkpoint_metric = "dice"
    c.eval.checkpoint_mode = "max"

    if arg == "smoke":
        c.data.image_size, c.data.num_train, c.data.num_val = 32, 32, 16
        c.model.features, c.model.depth = 4, 3
        c.train.epochs, c.train.batch_size = 2, 8
    elif arg:
        raise ValueError(f"unknown variant {arg!r} of configs/default.py; available: smoke")
    return c
