"""Experiment 1 (thesis §6.2.2, appendix Table 5): U-Net vs Attention U-Net vs Residual Attention U-Net.

  python -m jaxseg.main --config=configs/unet_variants.py:attunet --workdir=runs/exp1_attunet \\
      --config.data.root=/data/COVID-QU-Ex
Variants: ``unet`` (default), ``attunet``, ``resattunet``; append ``,smoke`` (or use
``:smoke``) for a one-minute run on the synthetic phantoms, ``,demo`` for a few
minutes' run that learns (``configs/default.py``'s ``make_demo``).

Table 5, value by value: Adam β1 0.9, β2 0.999; augment 1; BatchNorm init and
weight init "torch default"; batch size 8; batchwise loss; focal γ 2; learning
rate 1e-4; loss focal Tversky with FN weight 0.5 and FP weight 0.5; 30 epochs;
5 trials; validation split 0.2; weight decay 0. Reported: median of the last 5
epochs per run, mean (std) over the 5 runs.

Not in the table (our choices, stated): COVID-QU-Ex infection task at 256×256;
U-Net width 64 and depth 5 (Ronneberger et al.); "augment" = horizontal flips
and rotations up to 10°.
"""

from configs import default

ARMS = ("unet", "attunet", "resattunet")


def get_config(arg=None):
    arm, size = default.parse_arg(arg, ARMS, "unet")
    c = default.get_config()
    c.data.name, c.data.task, c.data.image_size, c.data.val_fraction = "covid_qu_ex", "infection", 256, 0.2
    c.data.augment, c.data.flips, c.data.rotation_limit = True, "horizontal", 10.0
    c.model.name, c.model.features, c.model.depth = arm, 64, 5
    c.model.weight_init = "torch_default"
    c.loss = default.ml_collections.ConfigDict(dict(
        name="focal_tversky", alpha=0.5, beta=0.5, gamma=2.0, batchwise=True))
    c.optimizer.update(dict(name="adam", learning_rate=1e-4, b1=0.9, b2=0.999, weight_decay=0.0))
    c.train.epochs, c.train.batch_size, c.train.num_trials = 30, 8, 5
    c.eval.metrics = ("balanced_accuracy", "roc_auc", "average_precision", "dice", "jaccard", "mahd")
    c.eval.aggregate.update(dict(last=5, reduce="median"))
    return default.resize(c, size)
