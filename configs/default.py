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
    c.data.val_fraction = ml_collections.config_dict.placeholder(float)  # None: the official split
    c.data.num_folds = ml_collections.config_dict.placeholder(int)  # K-fold cross-validation (None: off)
    c.data.fold = 0  # with num_folds: the fold that validates (0..K-1); launch/cv.sh runs them all
    c.data.cache_dir = ""  # prepared datasets / patch caches ("" = ~/tensorflow_datasets)
    # True: arrays in memory; False: stream from shards (python -m jaxseg.prepare builds them ahead of time);
    # 'auto': in memory when the arrays take at most memory_budget_gb, else streaming (jaxseg.data.streaming)
    c.data.in_memory = ml_collections.FieldReference("auto", field_type=object)
    c.data.memory_budget_gb = 4.0
    c.data.skip_bad_files = False  # True: leave out unreadable/inconsistent files and list them
    c.data.categories = ml_collections.config_dict.placeholder(tuple)  # COVID-QU-Ex classes (None: per task)
    c.data.channels = 1  # folder datasets: 1 = grayscale, 3 = colour
    c.data.ignore_index = ml_collections.config_dict.placeholder(int)  # mask value to ignore (e.g. 255)
    c.data.class_names = ()  # multilabel folder datasets: masks/<name>/ (empty: masks/<index>/)
    # augmentation (jaxseg.data.augment.host), applied to training batches only
    c.data.augment = False
    c.data.flips = "none"  # 'none' | 'horizontal' | 'vertical' | 'both'
    c.data.rotation_limit = 0.0  # degrees
    c.data.crop_size = ml_collections.config_dict.placeholder(int)
    c.data.random_pick = False  # a random rotated crop lying fully inside its patch (thesis §6.1.2)
    c.data.brightness = 0.0
    c.data.contrast = 0.0
    c.data.augment_on = "device"  # inside the jitted train step (measured faster, bench/RESULTS.md) or "host" (tf.data)
    # whole-slide histopathology (jaxseg.data.sources.histopathology)
    c.data.patch_size = 512
    c.data.tissue_downsample = 32
    c.data.min_tissue_fraction = 0.05
    c.data.min_saturation = 0.05
    c.data.sampling = "positives"  # 'all' | 'positives' | 'weighted'
    c.data.sampling_weights = (1.0, 5.0)  # (negative, positive) patch weights for 'weighted'
    c.data.positive_labels = ()  # label values counted as positive (empty: any non-zero)
    c.data.split_by = "patch"  # 'patch' (the thesis's) | 'slide': whole slides validate (no slide on both sides)
    c.data.val_slides = ()  # with split_by='slide': slide file stems that validate (empty: a seeded val_fraction)

    c.model = ml_collections.ConfigDict()
    c.model.name = "unet"
    c.model.num_classes = 1
    c.model.mode = "binary"  # 'binary' (C=1, sigmoid) | 'multiclass' (softmax, argmax) | 'multilabel' (C sigmoids)
    c.model.features = 8
    c.model.depth = 4
    # None = the model's own default (e.g. U-Net: BatchNorm, nearest upsampling, He-normal fan-in, no
    # dropout; FCN: bilinear-initialised transposed convolutions; ConvNeXt U-Net: LayerNorm, transposed)
    c.model.batch_norm = ml_collections.config_dict.placeholder(bool)
    c.model.dropout = ml_collections.config_dict.placeholder(float)
    c.model.upsample = ml_collections.config_dict.placeholder(str)  # 'nearest' | 'transpose'
    c.model.weight_init = ml_collections.config_dict.placeholder(str)  # 'he_normal' | 'torch_default' | ...
    c.model.fan_mode = ml_collections.config_dict.placeholder(str)  # 'fan_in' | 'fan_out'
    c.model.deep_supervision = False  # UNet++ only: a head on every nested level, loss averaged over them
    c.model.ds_eval = "last"  # UNet++ evaluation output: 'last' head or 'mean' of heads
    # a pretrained encoder (U-Net family): resnet18 | resnet34 | resnet50 | convnext_tiny (None: the thesis's)
    c.model.encoder = ml_collections.config_dict.placeholder(str)
    c.model.decoder_features = ml_collections.config_dict.placeholder(tuple)  # None: smp's (256, ..., 16)
    c.model.encoder_weights = ml_collections.config_dict.placeholder(str)  # torchvision/timm .safetensors/.pth
    c.model.freeze_encoder_epochs = 0  # the encoder's weights fixed for the first K epochs

    c.loss = ml_collections.ConfigDict()
    c.loss.name = "dice"
    c.loss.batchwise = True

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"  # 'constant' | 'cosine' | 'poly' (nnU-Net)
    c.optimizer.warmup_steps = 0

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 12
    c.train.batch_size = 16
    c.train.num_trials = 1
    c.train.trial = 0  # which trial this run is (set by jaxseg.training.trials); keys = fold_in(seed, trial)
    c.train.vectorize_trials = False  # train all trials as one vmapped program
    c.train.dtype = "float32"
    c.train.log_every = 10
    c.train.progress = True
    c.train.nonfinite = "stop"  # 'stop' | 'skip': a NaN/Inf loss or gradient stops the run, or the step is skipped

    c.eval = ml_collections.ConfigDict()
    c.eval.metrics = ("dice", "jaccard")
    c.eval.threshold = 0.5
    c.eval.checkpoint_metric = "dice"
    c.eval.checkpoint_mode = "auto"  # 'auto' (distances and loss: lower is better) | 'max' | 'min'
    # multi-trial summary (jaxseg.training.aggregate): per run the median (or mean) of the last k epochs
    c.eval.aggregate = ml_collections.ConfigDict(dict(last=5, reduce="median"))

    if arg in SIZES:
        resize(c, arg)
    elif arg:
        raise ValueError(f"unknown variant {arg!r} of configs/default.py; available: {', '.join(SIZES)}")
    return c


def _synthetic_task(c: ml_collections.ConfigDict) -> str:
    """The phantom task standing in for a config's data: its own task if the phantoms have it, else one of
    the same mode (a real dataset's classes become the phantoms' classes)."""
    if c.data.task in ("infection", "lung", "lung_infection", "lung_and_infection"):
        return c.data.task
    return {"multiclass": "lung_infection", "multilabel": "lung_and_infection"}.get(c.model.mode, "infection")


def make_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks any config to a CPU smoke test on the synthetic phantoms: same code, tiny sizes."""
    c.data.name, c.data.root, c.data.task = "synthetic", "", _synthetic_task(c)
    c.data.image_size, c.data.num_train, c.data.num_val = 32, 32, 16
    c.data.crop_size = None
    if c.data.random_pick:  # rotated 32² crops lying inside 48² phantoms (32·√2 < 48)
        c.data.image_size, c.data.crop_size = 48, 32
    c.model.features, c.model.depth = 4, 3
    c.train.epochs, c.train.batch_size = 2, 8
    c.train.num_trials = min(c.train.num_trials, 2)
    return c


SIZES = ("smoke", "demo")  # variants every thesis config takes, alone or after an arm: 'attunet,demo'

# The demo variant: the thesis's hyperparameters except what must scale to a 2-core CPU, stated here.
DEMO_IMAGE = 64        # phantoms of 64² (random pick: 64² crops from 96² phantoms), not 256² X-rays/slides
DEMO_FEATURES = 16     # U-Net width 16 at depth 4, not 64 at depth 5 (at width 8, dropout 0.5 stalls Lovász)
DEMO_EPOCHS = 10       # and schedules' periods scaled by DEMO_EPOCHS / epochs
DEMO_TRIALS = 2        # trials, vectorised into one program
DEMO_LR_SCALE = 30.0   # every arm's learning rate ×30 (the ratios between arms kept): at the thesis's
#                        1e-4/1e-5, a small U-Net learns nothing in 10 epochs of 48 steps (val Dice < 0.1)
# Dropout keeps the noise it puts on the network's sums, not its rate: inverted dropout at rate p over C
# channels adds relative variance p/((1−p)·C), so a thinner network gets the rate p' with
# p'/(1−p') = p/(1−p) · C'/C (Table 6's 0.5 at width 64 → 0.2 at width 16). At 0.5 and width 16 the noise
# makes "every probability ½" the Lovász loss's optimum: one of two trials stalled there (Dice 0).


def equal_noise_dropout(rate: float, width: int, new_width: int) -> float:
    """The dropout rate at ``new_width`` channels with the relative noise of ``rate`` at ``width``."""
    if not rate:
        return rate
    odds = rate / (1.0 - rate) * new_width / width
    return round(odds / (1.0 + odds), 4)


def parse_arg(arg: str | None, choices: tuple[str, ...], default: str) -> tuple[str, str]:
    """``'attunet,smoke'`` -> ('attunet', 'smoke'); ``'demo'`` -> (default, 'demo'); None -> (default, '')."""
    parts = [p for p in (arg or "").split(",") if p]
    sizes = [p for p in parts if p in SIZES]
    rest = [p for p in parts if p not in SIZES]
    if len(rest) > 1 or len(sizes) > 1 or (rest and rest[0] not in choices):
        raise ValueError(f"unknown variant {arg!r}; available: {', '.join(choices)}, each optionally with "
                         "',smoke' or ',demo'")
    return (rest[0] if rest else default), (sizes[0] if sizes else "")


def resize(c: ml_collections.ConfigDict, size: str) -> ml_collections.ConfigDict:
    """The config at ``size``: '' (as given), 'smoke' (``make_smoke``) or 'demo' (``make_demo``)."""
    return {"": lambda x: x, "smoke": make_smoke, "demo": make_demo}[size](c)


def make_demo(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Any thesis config on the phantoms, scaled to a CPU where every arm learns (val Dice ≥ 0.8) in a few
    minutes: the DEMO_* constants above (and the dropout rate of equal noise at the demo's width) are all
    that changes; loss, optimizer, batch size, augmentation, metrics and aggregation stay the thesis's."""
    scale = DEMO_EPOCHS / c.train.epochs
    c.data.name, c.data.root, c.data.task = "synthetic", "", _synthetic_task(c)
    c.data.image_size, c.data.num_train, c.data.num_val, c.data.crop_size = DEMO_IMAGE, 384, 96, None
    if c.data.random_pick:  # rotated 64² crops lying inside 96² phantoms (64·√2 < 96)
        c.data.image_size, c.data.crop_size = 96, DEMO_IMAGE
    width = c.model.features if isinstance(c.model.features, int) else c.model.features[0]
    c.model.dropout = equal_noise_dropout(c.model.dropout, width, DEMO_FEATURES)
    c.model.features, c.model.depth = DEMO_FEATURES, 4
    c.optimizer.learning_rate *= DEMO_LR_SCALE
    c.train.epochs = DEMO_EPOCHS
    c.train.num_trials = min(c.train.num_trials, DEMO_TRIALS)
    c.train.vectorize_trials = c.train.num_trials > 1
    c.eval.aggregate.last = min(c.eval.aggregate.last, DEMO_EPOCHS)
    schedule = c.loss.get("schedule")
    if schedule is not None and schedule.get("every"):  # Table 7's rebalance period, in epochs
        schedule.every = max(1, round(schedule.every * scale))
    return c
