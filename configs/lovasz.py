"""Experiment 2 (thesis §6.2.2, appendix Table 6): the Lovász loss (vs the Jaccard loss, configs/jaccard.py).

  python -m jaxseg.main --config=configs/lovasz.py --workdir=runs/exp2_lovasz --config.data.root=/data/COVID-QU-Ex
  python -m jaxseg.main --config=configs/lovasz.py:smoke --workdir=/tmp/smoke     # one minute, synthetic data
  python -m jaxseg.main --config=configs/lovasz.py:demo --workdir=/tmp/demo       # a few minutes, learns

Table 6, value by value: Adam β1 0.9, β2 0.999; BatchNorm init "torch default";
batch size 8; dropout after each conv, rate 0.5; learning rate 1e-4; model
Residual Attention U-Net; 30 epochs; 5 trials; validation split 0.2; weight
decay 0; weight init He normal, fan in. Reported: the last epoch's validation
values, mean over the 5 runs.

The Lovász loss is the thesis's binary form f_J(|y − ŷ|) on probabilities
(§5.2.1) — ``lovasz_softmax`` restricted to the foreground class. Not in the
table (our choices): COVID-QU-Ex infection at 256×256, width 64, depth 5.
"""

import ml_collections

from configs import default

LOSSES = {
    "lovasz": dict(name="lovasz_softmax", classes=(1,), per_image=False),
    "jaccard": dict(name="jaccard"),
}


def experiment2(loss: str, arg=None):
    _, size = default.parse_arg(arg, (), "")
    c = default.get_config()
    c.data.name, c.data.task, c.data.image_size, c.data.val_fraction = "covid_qu_ex", "infection", 256, 0.2
    c.model.name, c.model.features, c.model.depth = "resattunet", 64, 5
    c.model.dropout = 0.5
    c.model.weight_init, c.model.fan_mode = "he_normal", "fan_in"
    c.loss = ml_collections.ConfigDict(LOSSES[loss])
    c.optimizer.update(dict(name="adam", learning_rate=1e-4, b1=0.9, b2=0.999, weight_decay=0.0))
    c.train.epochs, c.train.batch_size, c.train.num_trials = 30, 8, 5
    c.eval.metrics = ("roc_auc", "dice", "jaccard", "average_precision")
    c.eval.aggregate.update(dict(last=1, reduce="mean"))
    return default.resize(c, size)


def get_config(arg=None):
    return experiment2("lovasz", arg)
