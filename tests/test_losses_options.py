"""Loss options of issue 15 (modes, smoothing, class weights, empty classes, label smoothing, weight
normalisation, per-class focal α, ignored pixels) against NumPy references written from the peers' formulas
(PyTorch, MONAI, smp, Berman, Kervadec). torch is not installed here: every reference is NumPy (float64)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from jaxseg import losses
from jaxseg.losses import boundary as B
from jaxseg.losses import regional as R

N, H, W = 2, 6, 5


# --- the values of the losses before the options were added (recorded from the code at that commit) ---
def _recorded_inputs():
    rng = np.random.default_rng(20240515)
    z1 = rng.normal(size=(N, H, W, 1)).astype(np.float32) * 2
    y1 = (rng.random((N, H, W, 1)) < 0.35).astype(np.float32)
    y1[1] = 0.0  # an empty image
    z3 = rng.normal(size=(N, H, W, 3)).astype(np.float32) * 2
    y3 = np.eye(3, dtype=np.float32)[rng.integers(0, 2, size=(N, H, W))]  # class 2 absent
    rng = np.random.default_rng(7)
    v1, v3 = (rng.normal(size=z.shape).astype(np.float32) for z in (z1, z3))
    return z1, y1, z3, y3, v1, v3


Z1, Y1, Z3, Y3, V1, V3 = _recorded_inputs()
_W = "class weights"
# (loss, C, parameters, value, Σ grad·v) — recorded before this change, on the inputs above
RECORDED = [
    ('bce', 1, {}, 1.1338629722595215, -0.05615925764277688),
    ('weighted_bce', 1, {'pos_weight': 0.7}, 0.3873046934604645, -0.007074783547504021),
    ('cross_entropy', 1, {}, 1.1338629722595215, -0.05615925764277688),
    ('cross_entropy', 3, {}, 1.9696565866470337, 0.03156619274325244),
    ('cross_entropy', 1, {'class_weights': _W}, 0.7437286376953125, 0.008569097354570603),
    ('cross_entropy', 3, {'class_weights': _W}, 2.7072432041168213, 0.08711509975874102),
    ('focal', 1, {}, 0.7868428826332092, -0.06317950798252618),
    ('focal', 3, {}, 1.5992940664291382, -0.012698097017534854),
    ('focal', 1, {'gamma': 1.5, 'alpha': _W}, 0.5471744537353516, -0.01018554406054488),
    ('focal', 3, {'gamma': 1.5, 'alpha': _W}, 2.3126702308654785, 0.04742872463205583),
    ('dice', 1, {}, 0.821201741695404, 0.031735048355223554),
    ('dice', 3, {}, 0.6939762830734253, 0.021484811615991813),
    ('dice', 1, {'batchwise': True}, 0.8317955732345581, 0.04461264224033752),
    ('dice', 3, {'batchwise': True}, 0.71140456199646, 0.02104418056122355),
    ('dice', 3, {'include_background': False}, 0.7786037921905518, 0.03261033330634332),
    ('jaccard', 1, {}, 0.8713120818138123, 0.020679444748162457),
    ('jaccard', 3, {}, 0.779600977897644, 0.016351271964155457),
    ('jaccard', 1, {'smooth': 0.3, 'batchwise': True}, 0.9136342406272888, 0.02691060155968148),
    ('jaccard', 3, {'smooth': 0.3, 'batchwise': True}, 0.8249615430831909, 0.014884797399819384),
    ('tversky', 1, {'alpha': 0.7, 'beta': 0.3}, 0.7209798097610474, 0.040095786013089024),
    ('tversky', 3, {'alpha': 0.7, 'beta': 0.3}, 0.637581467628479, 0.02071420972262565),
    ('tversky', 3, {'alpha': 0.3, 'beta': 0.7, 'smooth': 0.5, 'batchwise': True}, 0.6968128681182861,
     0.02246597718532583),
    ('focal_tversky', 1, {}, 0.6185411810874939, 0.03921451183380195),
    ('focal_tversky', 3, {}, 0.44426000118255615, 0.02635768646408996),
    ('focal_tversky', 1, {'gamma': 0.75, 'alpha': 0.7, 'beta': 0.3}, 0.7808226346969604, 0.03387925456200964),
    ('focal_tversky', 3, {'gamma': 0.75, 'alpha': 0.7, 'beta': 0.3}, 0.7117341756820679, 0.017309728346128726),
    ('lovasz_hinge', 1, {}, 4.485229015350342, -0.7294429782136498),
    ('lovasz_hinge', 1, {'per_image': False}, 3.710416078567505, -0.25254355968498793),
    ('lovasz_softmax', 1, {}, 0.6928039789199829, 0.005350950998576649),
    ('lovasz_softmax', 3, {}, 0.7126380205154419, 0.017686602979238335),
    ('lovasz_softmax', 3, {'per_image': True, 'classes': 'all'}, 0.8069086074829102, 0.008308627291938032),
    ('boundary', 1, {}, 0.23054766654968262, -0.026323542683390475),
    ('boundary', 3, {}, 0.07040127366781235, 0.012347219293870303),
    ('boundary', 3, {'clamp': 2.0, 'rescale': 3.0}, 0.023467091843485832, 0.004115739849643519),
    ('boundary', 3, {'include_background': True}, 0.11580536514520645, 0.008104663189422621),
]


def test_defaults_equal_the_values_recorded_before_the_options():
    def run(name, c, kw):
        z, y, v = (Z1, Y1, V1) if c == 1 else (Z3, Y3, V3)
        kw = {k: ([0.5, 2.0] if c == 1 else [0.5, 2.0, 1.5]) if p == _W else p for k, p in kw.items()}
        value, g = jax.value_and_grad(lambda a: losses.get_loss(name)(a, y, **kw))(z)
        return value, jnp.sum(g * v)

    got = jax.jit(lambda: [run(n, c, kw) for n, c, kw, _, _ in RECORDED])()
    chex.assert_trees_all_close(got, [(np.float32(v), np.float32(d)) for *_, v, d in RECORDED],
                                rtol=2e-5, atol=2e-6)


# --- inputs of the three modes ---
RNG = np.random.default_rng(15)
M = (RNG.random((N, H, W, 1)) < 0.7).astype(np.float32)  # pixel_weight: 0 = ignored
ZB = (RNG.normal(size=(N, H, W, 1)) * 2).astype(np.float32)
YB = (RNG.random((N, H, W, 1)) < 0.4).astype(np.float32)
YB[1, :3] = 0.0
ZC = (RNG.normal(size=(N, H, W, 3)) * 2).astype(np.float32)
YC = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, size=(N, H, W))]
YC[1] = np.eye(3, dtype=np.float32)[RNG.integers(0, 2, size=(H, W))]  # class 2 absent from image 1
ZL = (RNG.normal(size=(N, H, W, 3)) * 2).astype(np.float32)
YL = (RNG.random((N, H, W, 3)) < 0.35).astype(np.float32)
YL[0, ..., 1] = 0.0  # class 1 absent from image 0
SOFT = {"binary": RNG.random((N, H, W, 1)).astype(np.float32),
        "multiclass": np.asarray(jax.nn.softmax(RNG.normal(size=(N, H, W, 3)) * 2)).astype(np.float32),
        "multilabel": RNG.random((N, H, W, 3)).astype(np.float32)}
DATA = {"binary": (ZB, YB), "multiclass": (ZC, YC), "multilabel": (ZL, YL)}
MODES = list(DATA)


def _np_probs(z, mode):
    z = z.astype(np.float64)
    if mode == "multiclass":
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-z))


def _close(got, want, rtol=1e-5, atol=1e-6):
    chex.assert_trees_all_close(got, np.float32(want), rtol=rtol, atol=atol)


def _jit_all(thunks):
    """Evaluate zero-argument loss calls in one compiled program (far cheaper than op-by-op)."""
    return jax.jit(lambda: [t() for t in thunks])()


def _check_all(cases, rtol=1e-5, atol=1e-6):
    """``cases``: (label, thunk, NumPy reference); every thunk evaluated in one jit, then compared."""
    for (label, _, want), got in zip(cases, _jit_all([c[1] for c in cases])):
        chex.assert_trees_all_close(got, np.float32(want), rtol=rtol, atol=atol, custom_message=str(label))


def _value_and_grad(fn, z):
    return lambda: jax.value_and_grad(fn)(jnp.asarray(z))


def _finite(loss_and_grad, label=""):
    loss, g = loss_and_grad
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(g))), (label, loss, g)


def test_probabilities_by_mode():
    for mode, (z, _) in DATA.items():
        _close(R.probabilities(z, mode=mode), _np_probs(z, mode))
    _close(R.probabilities(ZC), _np_probs(ZC, "multiclass"))  # None: today's rule
    _close(R.probabilities(ZB), _np_probs(ZB, "binary"))


# --- Dice / Jaccard / Tversky / focal Tversky ---
def _np_overlap(kind, z, y, mode, alpha=0.5, beta=0.5, gamma=None, smooth=1.0, smooth_nr=None, smooth_dr=None,
                squared_pred=False, class_weights=None, ignore_empty=False, batchwise=False,
                include_background=True, pixel_weight=None):
    """From the totals: Dice 1 − (2I + ε_n)/(Sŷ + Sy + ε_d) (MONAI),
    Jaccard 1 − (I + ε_n)/(Sŷ + Sy − I + ε_d),
    Tversky 1 − (I + ε_n)/(I + α(Sy − I) + β(Sŷ − I) + ε_d); S = Σ m·x (Σ m·x² if squared_pred)."""
    nr = smooth if smooth_nr is None else smooth_nr
    dr = smooth if smooth_dr is None else smooth_dr
    p, y = _np_probs(z, mode), y.astype(np.float64)
    m = np.ones(p.shape[:-1] + (1,)) if pixel_weight is None else pixel_weight.astype(np.float64)
    ax = (0, 1, 2) if batchwise else (1, 2)
    e = 2 if squared_pred else 1
    i, sp, sy, gt = (m * p * y).sum(ax), (m * p ** e).sum(ax), (m * y ** e).sum(ax), (m * y).sum(ax)
    num, den = {"dice": (2 * i + nr, sp + sy + dr), "jaccard": (i + nr, sp + sy - i + dr)}.get(
        kind, (i + nr, i + alpha * (sy - i) + beta * (sp - i) + dr))
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = 1 - np.where(den == 0, 1.0, num / den)
    if gamma is not None:
        loss = np.where(loss > 0, np.maximum(loss, 1e-12) ** gamma, 0.0)
    c = z.shape[-1]
    wts = np.ones(c) if class_weights is None else np.asarray(class_weights, float)
    if not include_background and c > 1:
        loss, gt, wts = loss[..., 1:], gt[..., 1:], (wts[1:] if len(wts) == c else wts)
    v = np.broadcast_to(wts, loss.shape)
    present = (gt > 0) if ignore_empty else np.ones(loss.shape, bool)
    den = v.sum() if ignore_empty == "zero" else (v * present).sum()
    return (v * present * loss).sum() / den if den > 0 else 0.0


def _overlap_options(mode):
    c = DATA[mode][0].shape[-1]
    cw = [0.3, 2.0, 1.2][:c]
    return [
        {},
        {"smooth_nr": 0.0, "smooth_dr": 1e-5},
        {"smooth": 0.0, "batchwise": True},
        {"squared_pred": True, "smooth": 0.5},
        {"class_weights": cw},
        {"ignore_empty": True},
        {"ignore_empty": "zero", "batchwise": True, "smooth": 0.0},
        {"include_background": False, "class_weights": cw[1:] or cw},
        {"pixel_weight": M},
        {"pixel_weight": M, "squared_pred": True, "class_weights": cw, "ignore_empty": True, "smooth_nr": 0.0,
         "smooth_dr": 0.0},
        {"soft": True, "smooth_dr": 0.1},
    ]


OVERLAP = {"dice": {}, "jaccard": {}, "tversky": {"alpha": 0.7, "beta": 0.3},
           "focal_tversky": {"alpha": 0.3, "beta": 0.7, "gamma": 1.5}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(OVERLAP))
def test_overlap_options_match_numpy(kind, mode):
    z, y = DATA[mode]
    fn = getattr(R, kind)
    cases = []
    for opts in _overlap_options(mode):
        opts = {**OVERLAP[kind], **opts}
        labels = SOFT[mode] if opts.pop("soft", False) else y
        f = functools.partial(fn, labels=labels, mode=mode, **opts)
        cases.append((opts, labels, _value_and_grad(lambda a, f=f: f(a), z)))
    if mode != "multilabel":  # mode None is today's rule: binary for C=1, softmax for C>1
        cases.append(("mode None", y, _value_and_grad(lambda a: fn(a, y, **OVERLAP[kind]), z)))
    got = _jit_all([c[2] for c in cases])
    for (opts, labels, _), (loss, g) in zip(cases[:len(_overlap_options(mode))], got):
        _finite((loss, g), opts)
        _close(loss, _np_overlap(kind, z, labels, mode, **opts))
    if mode != "multilabel":
        chex.assert_trees_all_close(got[-1], got[0])
    # the gradient of the last options against a central difference of the NumPy reference
    opts, labels, _ = cases[len(_overlap_options(mode)) - 1]
    g = got[len(_overlap_options(mode)) - 1][1]
    v = np.random.default_rng(1).normal(size=z.shape)
    h = 1e-4
    fd = (_np_overlap(kind, z + h * v, labels, mode, **opts) - _np_overlap(kind, z - h * v, labels, mode, **opts))
    _close(jnp.sum(g * v), fd / (2 * h), rtol=2e-3, atol=2e-5)


def test_overlap_peer_formulas_literally():
    z, y = ZL, YL
    p = _np_probs(z, "multilabel")
    # smp DiceLoss('multilabel', smooth=0): dims (0, 2), loss *= (y.sum > 0), loss.mean()
    inter, card = (p * y).sum((0, 1, 2)), (p + y).sum((0, 1, 2))
    smp = ((1 - 2 * inter / np.maximum(card, 1e-7)) * (y.sum((0, 1, 2)) > 0)).mean()
    yb = YL.copy()
    yb[..., 2] = 0.0  # a class absent from the whole batch: smp zeroes it, keeps it in the mean
    inter_b, card_b = (p * yb).sum((0, 1, 2)), (p + yb).sum((0, 1, 2))
    smp_b = ((1 - 2 * inter_b / card_b) * (yb.sum((0, 1, 2)) > 0)).mean()
    smp_dice = functools.partial(R.dice, mode="multilabel", batchwise=True, ignore_empty="zero", smooth=0.0)
    # MONAI DiceLoss(sigmoid=True, squared_pred=True, smooth_nr=1e-5, smooth_dr=1e-5): batch=False, mean over N, C
    monai = (1 - (2 * (p * y).sum((1, 2)) + 1e-5) / ((p ** 2).sum((1, 2)) + (y ** 2).sum((1, 2)) + 1e-5)).mean()
    # MONAI DiceLoss(jaccard=True, smooth_nr=a, smooth_dr=b) = ours with a/2, b/2
    i, u = (p * y).sum((1, 2)), p.sum((1, 2)) + y.sum((1, 2)) - (p * y).sum((1, 2))
    monai_j = (1 - (2 * i + 0.4) / (2 * u + 0.6)).mean()
    _check_all([
        ("smp", lambda: smp_dice(z, y), smp),
        ("smp, a class absent from the batch", lambda: smp_dice(z, yb), smp_b),
        ("MONAI squared_pred", lambda: R.dice(z, y, mode="multilabel", squared_pred=True, smooth_nr=1e-5,
                                              smooth_dr=1e-5), monai),
        ("MONAI jaccard", lambda: R.jaccard(z, y, mode="multilabel", smooth_nr=0.2, smooth_dr=0.3), monai_j),
    ])


@pytest.mark.parametrize("kind", list(OVERLAP))
def test_smooth_zero_with_empty_masks_is_zero_and_finite(kind):
    fn = functools.partial(getattr(R, kind), **OVERLAP[kind])
    empty = np.zeros((N, H, W, 3), np.float32)
    background = np.zeros_like(empty)
    background[..., 0] = 1.0
    cases = [  # (logits, labels, mode): predictions exactly 0 where the ground truth is empty
        (np.full((N, H, W, 1), -200.0, np.float32), empty[..., :1], "binary"),
        (np.full((N, H, W, 3), -200.0, np.float32), empty, "multilabel"),
        (np.where(background > 0, 200.0, -200.0).astype(np.float32), background, "multiclass"),
    ]
    thunks = []
    for z, y, mode in cases:
        for opts in ({"smooth": 0.0}, {"smooth_nr": 0.0, "smooth_dr": 0.0, "squared_pred": True, "batchwise": True},
                     {"smooth": 0.0, "ignore_empty": True}):
            thunks.append(_value_and_grad(functools.partial(fn, labels=y, mode=mode, **opts), z))
        probs = np.zeros_like(y) if mode != "multiclass" else y  # probabilities exactly 0 on empty classes
        thunks.append(_value_and_grad(functools.partial(fn, labels=y, mode=mode, smooth=0.0, from_logits=False),
                                      probs))
    for i, (loss, g) in enumerate(_jit_all(thunks)):
        _finite((loss, g), i)
        _close(loss, 0.0, atol=1e-7)


# --- cross-entropy family ---
def _np_sigmoid_ce(z, y, w_neg=1.0, w_pos=1.0, eps=0.0, normalization="pixels", pixel_weight=None, gamma=0.0,
                   alpha=None):
    """BCE per element −(w₊ q log p + w₋ (1−q) log(1−p)), q = y(1−ε) + ε/2;
    torchvision's sigmoid_focal_loss if gamma/alpha."""
    p, y = _np_probs(z, "binary"), y.astype(np.float64)
    m = np.ones(p.shape[:-1] + (1,)) if pixel_weight is None else pixel_weight.astype(np.float64)
    q = y * (1 - eps) + eps / 2
    ce = -(w_pos * q * np.log(p) + w_neg * (1 - q) * np.log(1 - p))
    if gamma or alpha is not None:  # torchvision sigmoid_focal_loss: ce·(1 − p_t)^γ·α_t
        p_t = p * y + (1 - p) * (1 - y)
        a = 1.0 if alpha is None else np.asarray(alpha) * y + (1 - np.asarray(alpha)) * (1 - y)
        ce = a * ce * (1 - p_t) ** gamma
    den = (m * (w_pos * y + w_neg * (1 - y))).sum() if normalization == "weights" else (m * np.ones_like(p)).sum()
    return (m * ce).sum() / den


def _np_torch_cross_entropy(z, y, weight=None, label_smoothing=0.0, pixel_weight=None):
    """PyTorch F.cross_entropy(z, target, weight, ignore_index, reduction='mean', label_smoothing), class indices:
    ((1−ε)·Σ w_t·(−log p_t) + ε/C·Σ_i Σ_c w_c·(−log p_c)) / Σ w_t over the pixels not ignored."""
    c = z.shape[-1]
    logp = np.log(_np_probs(z, "multiclass")).reshape(-1, c)
    t = y.reshape(-1, c).argmax(-1)
    keep = np.ones(len(t), bool) if pixel_weight is None else pixel_weight.reshape(-1) > 0
    logp, t = logp[keep], t[keep]
    w = np.ones(c) if weight is None else np.asarray(weight, float)
    nll = -(logp[np.arange(len(t)), t] * w[t]).sum()
    smooth = -(logp * w).sum()
    return ((1 - label_smoothing) * nll + label_smoothing / c * smooth) / w[t].sum()


def _np_softmax_ce(z, y, weight=None, eps=0.0, pixel_weight=None, gamma=0.0):
    """Thesis −Σ m Σ_c w_c (1−p_c)^γ q_c log p_c / Σ m, q = (1−ε)y + ε/C."""
    c = z.shape[-1]
    p = _np_probs(z, "multiclass")
    m = np.ones(p.shape[:-1] + (1,)) if pixel_weight is None else pixel_weight.astype(np.float64)
    w = np.ones(c) if weight is None else np.asarray(weight, float)
    q = (1 - eps) * y + eps / c
    return -(m * w * (1 - p) ** gamma * q * np.log(p)).sum() / m.sum()


def test_cross_entropy_softmax_options():
    z, y, w = ZC, YC, [0.2, 1.0, 3.0]
    cases = []
    for eps, m in ((0.0, None), (0.1, None), (0.2, M)):
        for weight in (None, w):
            kw = dict(class_weights=weight, label_smoothing=eps, pixel_weight=m)
            cases.append((("torch", eps, weight, m is None), functools.partial(
                R.cross_entropy, z, y, weight_normalization="weights", mode="multiclass", **kw),
                _np_torch_cross_entropy(z, y, weight, eps, m)))
            cases.append((("thesis", eps, weight, m is None), functools.partial(R.cross_entropy, z, y, **kw),
                          _np_softmax_ce(z, y, weight, eps, m)))
    soft = SOFT["multiclass"]  # soft targets, 'weights': Σ m Σ_c w_c q_c l_c / Σ m Σ_c w_c y_c
    p = _np_probs(z, "multiclass")
    want = -(M * w * ((1 - 0.1) * soft + 0.1 / 3) * np.log(p)).sum() / (M * w * soft).sum()
    f = functools.partial(R.cross_entropy, labels=soft, class_weights=w, label_smoothing=0.1,
                          weight_normalization="weights", pixel_weight=M)
    cases.append(("soft", lambda: f(z), want))
    _check_all(cases)
    _finite(jax.jit(jax.value_and_grad(f))(z))


def test_cross_entropy_sigmoid_options():
    cases, cw = [], np.array([0.5, 1.0, 2.0])
    z2, y2 = np.concatenate([np.zeros_like(ZB), ZB], -1), np.concatenate([1 - YB, YB], -1)
    for eps in (0.0, 0.1):
        for m in (None, M):
            label = (eps, m is None)
            for norm in ("pixels", "weights"):
                kw = dict(label_smoothing=eps, weight_normalization=norm, pixel_weight=m)
                want = _np_sigmoid_ce(ZB, YB, 0.4, 2.5, eps, norm, m)
                # binary: class_weights = (background, foreground); the same as two-class softmax on (0, z)
                cases.append((("binary", norm, label), functools.partial(
                    R.cross_entropy, ZB, YB, class_weights=(0.4, 2.5), **kw), want))
                cases.append((("two-class softmax", norm, label), functools.partial(
                    R.cross_entropy, z2, y2, class_weights=(0.4, 2.5), **kw), want))
                # multilabel: one weight per channel on both terms
                cases.append((("multilabel", norm, label), functools.partial(
                    R.cross_entropy, ZL, YL, class_weights=cw, mode="multilabel", **kw),
                    _np_sigmoid_ce(ZL, YL, cw, cw, eps, norm, m)))
            for mode, (z, y) in (("binary", (ZB, YB)), ("multilabel", (ZL, YL))):
                for labels in (y, SOFT[mode]):
                    cases.append((("bce", mode, label), functools.partial(
                        R.bce, z, labels, label_smoothing=eps, pixel_weight=m, mode=mode),
                        _np_sigmoid_ce(z, labels, eps=eps, pixel_weight=m)))
    # weighted_bce: PyTorch pos_weight convention, per-channel lists in multilabel, 'weights' normalisation
    pos = np.array([2.0, 0.5, 4.0])
    cases += [
        ("weighted_bce", lambda: R.weighted_bce(ZB, YB, pos_weight=3.0, neg_weight=1.0, pixel_weight=M,
                                                weight_normalization="weights"),
         _np_sigmoid_ce(ZB, YB, 1.0, 3.0, normalization="weights", pixel_weight=M)),
        ("weighted_bce per class", lambda: R.weighted_bce(ZL, YL, pos_weight=pos, neg_weight=1.0,
                                                          mode="multilabel", label_smoothing=0.1),
         _np_sigmoid_ce(ZL, YL, 1.0, pos, eps=0.1)),
        ("weighted_bce multilabel", lambda: R.weighted_bce(ZL, YL, pos_weight=0.7, mode="multilabel"),
         _np_sigmoid_ce(ZL, YL, 0.3, 0.7)),
    ]
    _check_all(cases, rtol=2e-5)


def test_smp_soft_bce_smooth_factor_is_half_the_label_smoothing():
    s = 0.1  # smp SoftBCEWithLogitsLoss(smooth_factor=s): q = (1 − y)·s + y·(1 − s), then BCEWithLogits mean
    p, q = _np_probs(ZL, "multilabel"), (1 - YL) * s + YL * (1 - s)
    smp = -(q * np.log(p) + (1 - q) * np.log(1 - p)).mean()
    _check_all([("smp", lambda: R.bce(ZL, YL, label_smoothing=2 * s, mode="multilabel"), smp)])


def test_focal_alpha_per_class_and_modes():
    alpha, cases = [0.25, 0.6, 0.9], []
    for m in (None, M):
        f = functools.partial(R.focal, pixel_weight=m)
        cases += [
            ("multilabel, α per class", lambda f=f: f(ZL, YL, gamma=2.0, alpha=alpha, mode="multilabel"),
             _np_sigmoid_ce(ZL, YL, gamma=2.0, alpha=np.array(alpha), pixel_weight=m)),
            ("multilabel, scalar α", lambda f=f: f(ZL, YL, gamma=1.5, alpha=0.25, mode="multilabel"),
             _np_sigmoid_ce(ZL, YL, gamma=1.5, alpha=0.25, pixel_weight=m)),
            ("binary, scalar α", lambda f=f: f(ZB, YB, gamma=2.0, alpha=0.25),
             _np_sigmoid_ce(ZB, YB, gamma=2.0, alpha=0.25, pixel_weight=m)),
            ("binary as multilabel", lambda f=f: f(ZB, YB, gamma=2.0, alpha=[0.25], mode="multilabel"),
             _np_sigmoid_ce(ZB, YB, gamma=2.0, alpha=0.25, pixel_weight=m)),
            ("softmax, α per class", lambda f=f: f(ZC, YC, gamma=2.0, alpha=alpha, mode="multiclass"),
             _np_softmax_ce(ZC, YC, alpha, pixel_weight=m, gamma=2.0)),
        ]
    _check_all(cases)
    _finite(jax.jit(jax.value_and_grad(lambda a: R.focal(a, YL, alpha=alpha, mode="multilabel", pixel_weight=M)))(ZL))


# --- Lovász and boundary ---
def _np_lovasz_grad(gt):
    gts = gt.sum()
    jac = 1.0 - (gts - gt.cumsum()) / (gts + (1 - gt).cumsum())
    jac[1:] = jac[1:] - jac[:-1]
    return jac


def _np_lovasz_ext(errors, gt):
    """Berman's flat form on the kept pixels: sort errors decreasingly, dot relu(errors) with lovasz_grad."""
    if len(gt) == 0:
        return 0.0
    perm = np.argsort(-errors, kind="stable")
    return float(np.dot(np.maximum(errors[perm], 0), _np_lovasz_grad(gt[perm])))


def _np_lovasz_hinge(z, y, m, per_image=True):
    """Mean over channels (and images) of Berman's hinge on the non-ignored pixels."""
    keep = np.broadcast_to(m > 0, y.shape)
    rows = []
    for c in range(z.shape[-1]):
        groups = [(z[i, ..., c], y[i, ..., c], keep[i, ..., c]) for i in range(len(z))] if per_image else \
            [(z[..., c], y[..., c], keep[..., c])]
        rows += [_np_lovasz_ext(1 - a[k] * (2 * b[k] - 1), b[k]) for a, b, k in groups]
    return np.mean(rows)


def _np_lovasz_softmax(p, y, m):
    """Berman's lovasz_softmax (classes='present', batch pooled) on the non-ignored pixels."""
    keep = (m[..., 0] > 0).reshape(-1)
    p, y = p.reshape(-1, p.shape[-1])[keep], y.reshape(-1, y.shape[-1])[keep]
    scores = [_np_lovasz_ext(np.abs(y[:, c] - p[:, c]), y[:, c]) for c in range(p.shape[-1]) if y[:, c].any()]
    return np.mean(scores) if scores else 0.0


def _np_boundary(p, y, m, keep_background):
    d = np.zeros(y.shape)
    for i in range(y.shape[0]):
        for c in range(y.shape[-1]):
            pos = (y[i, ..., c] * m[i, ..., 0]) > 0.5
            if pos.any():
                edt = ndimage.distance_transform_edt
                d[i, ..., c] = edt(~pos) * ~pos - (edt(pos) - 1) * pos
    if not keep_background:
        p, d = p[..., 1:], d[..., 1:]
    return (m * p * d).sum() / (m.sum() * p.shape[-1])


@pytest.mark.parametrize("mode", MODES)
def test_lovasz_and_boundary_modes_with_ignored_pixels(mode):
    z, y = DATA[mode]
    p = _np_probs(z, mode)
    hinge, softmax = losses.get_loss("lovasz_hinge"), losses.get_loss("lovasz_softmax")
    cases = []
    for m in (np.ones_like(M), M):
        if mode != "multiclass":
            for per_image in (True, False):
                cases.append((("hinge", per_image), functools.partial(hinge, z, y, per_image=per_image, mode=mode,
                                                                       pixel_weight=m),
                              _np_lovasz_hinge(z.astype(np.float64), y, m, per_image)))
        pp, yy = (np.concatenate([1 - p, p], -1), np.concatenate([1 - y, y], -1)) if mode == "binary" else (p, y)
        cases.append(("softmax", functools.partial(softmax, z, y, mode=mode, pixel_weight=m),
                      _np_lovasz_softmax(pp, yy, m)))
        cases.append(("boundary", functools.partial(B.boundary, z, y, mode=mode, pixel_weight=m),
                      _np_boundary(p, y, m, mode != "multiclass")))
    _check_all(cases, rtol=2e-5)


# --- ignored pixels: no contribution at all ---
CW3 = [0.5, 1.0, 2.0]
PROPERTY_CASES = [(name, mode, kw) for mode in MODES for name, kw in [
    ("cross_entropy", {"class_weights": (0.5, 2.0) if mode == "binary" else CW3, "weight_normalization": "weights",
                       "label_smoothing": 0.1}),
    ("bce", {}), ("weighted_bce", {"pos_weight": 0.7}),
    ("focal", {"alpha": 0.25 if mode != "multiclass" else CW3}),
    ("dice", {"ignore_empty": True}),
    ("jaccard", {"class_weights": [1.0] if mode == "binary" else CW3, "squared_pred": True, "smooth": 0.0,
                 "batchwise": True}),
    ("tversky", {"alpha": 0.7, "beta": 0.3}), ("focal_tversky", {"gamma": 0.75}),
    ("lovasz_hinge", {"per_image": mode == "binary"}), ("lovasz_softmax", {}), ("boundary", {}),
] if not (mode == "multiclass" and name in ("bce", "weighted_bce", "lovasz_hinge"))]


@functools.lru_cache(maxsize=None)
def _compiled(name, mode, kw_items):
    """jit of (z, y, m) -> (value_and_grad with pixel_weight m, value_and_grad without pixel_weight)."""
    fn = functools.partial(losses.get_loss(name), mode=mode, **dict(kw_items))
    with_m = jax.value_and_grad(lambda z, y, m: fn(z, y, pixel_weight=m))
    return jax.jit(lambda z, y, m: (with_m(z, y, m), jax.value_and_grad(fn)(z, y)))


def _key(name, mode, kw):
    return name, mode, tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(kw.items()))


def _relabel(y, mode, rng):
    if mode == "multiclass":
        return np.eye(y.shape[-1], dtype=np.float32)[rng.integers(0, y.shape[-1], size=y.shape[:-1])]
    return (rng.random(y.shape) < 0.5).astype(np.float32)


def _check_ignored_pixels_change_nothing(name, mode, kw, seed, fraction):
    rng = np.random.default_rng(seed)
    z, y = DATA[mode]
    m = (rng.random((N, H, W, 1)) >= fraction).astype(np.float32)
    z2 = np.where(m > 0, z, rng.normal(size=z.shape).astype(np.float32) * 5)
    y2 = np.where(m > 0, y, _relabel(y, mode, rng))
    f = _compiled(*_key(name, mode, kw))
    (l1, g1), (l2, g2) = f(z, y, m)[0], f(z2, y2, m)[0]
    assert np.isfinite(float(l1)) and np.all(np.isfinite(np.asarray(g1)))
    chex.assert_trees_all_close((l2, g2), (l1, g1), rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(g1 * (1 - m), np.zeros_like(z))  # no gradient at ignored pixels


@pytest.mark.parametrize("name,mode,kw", PROPERTY_CASES)
def test_ignored_pixels_change_nothing_and_all_ones_is_no_weight(name, mode, kw):
    _check_ignored_pixels_change_nothing(name, mode, kw, 0, 0.3)
    z, y = DATA[mode]
    f = _compiled(*_key(name, mode, kw))
    with_ones, without = f(z, y, np.ones_like(M))
    chex.assert_trees_all_close(with_ones, without, rtol=1e-5, atol=1e-6)
    loss, g = f(z, y, np.zeros_like(M))[0]  # every pixel ignored: 0, and no gradient
    chex.assert_trees_all_close((loss, g), (np.float32(0.0), np.zeros_like(z)))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(case=st.sampled_from(PROPERTY_CASES), seed=st.integers(0, 2 ** 31 - 1), fraction=st.floats(0.0, 1.0))
def test_ignored_pixels_property(case, seed, fraction):
    _check_ignored_pixels_change_nothing(*case, seed, fraction)


# --- trainer wiring and clear errors ---
def test_build_loss_fills_pixel_weight_from_the_batch():
    batch = {"image": np.zeros_like(ZL), "mask": YL, "pixel_weight": M}
    cfg = {"terms": [{"name": "dice", "mode": "multilabel"}, {"name": "boundary", "mode": "multilabel"}]}
    loss, aux = losses.build_loss(cfg)(ZL, batch, 0)
    _close(aux["loss_dice"], float(R.dice(ZL, YL, mode="multilabel", pixel_weight=M)))
    _close(aux["loss_boundary"], float(B.boundary(ZL, YL, mode="multilabel", pixel_weight=M)))
    without = losses.build_loss({"name": "bce"})(ZB, {"mask": YB}, 0)[0]
    _close(without, float(R.bce(ZB, YB)))
    assert "pixel_weight" not in losses.LOSSES.parameters("dice") and "mode" in losses.LOSSES.parameters("dice")
    with pytest.raises(ValueError, match="no parameter.*pixel_weight"):
        losses.build_loss({"name": "dice", "pixel_weight": 1.0})


@pytest.mark.parametrize("call,match", [
    (lambda: R.dice(ZB, YB, smooth=1.0, smooth_nr=0.0), "either smooth .* or smooth_nr/smooth_dr"),
    (lambda: R.dice(ZC, YC, mode="binary"), "dice: mode='binary' has one channel but num_classes=3"),
    (lambda: R.cross_entropy(ZB, YB, mode="multiclass"), "cross_entropy: mode='multiclass' needs num_classes >= 2"),
    (lambda: R.focal(ZB, YB, mode="softmax"), "focal: mode must be one of binary, multiclass, multilabel; got 'softmax'"),
    (lambda: R.probabilities(ZC, mode="binary"), "^probabilities: mode='binary'"),
    (lambda: R.dice(ZC, YC, pixel_weight=np.ones_like(YC)), r"dice: pixel_weight \(2, 6, 5, 3\) must have shape"),
    (lambda: B.boundary(ZB, YB, pixel_weight=M[..., 0]), r"boundary: pixel_weight \(2, 6, 5\)"),
    (lambda: losses.get_loss("lovasz_hinge")(ZL, YL, pixel_weight=M[:1]), r"lovasz_hinge: pixel_weight \(1, 6, 5, 1\)"),
    (lambda: R.cross_entropy(ZC, YC, weight_normalization="pytorch"), "'pixels' or 'weights'"),
    (lambda: R.bce(ZB, YB, label_smoothing=1.5), "label_smoothing must be in"),
    (lambda: R.dice(ZC, YC, ignore_empty="sometimes"), "ignore_empty must be"),
    (lambda: R.jaccard(ZC, YC, class_weights=[1.0, 2.0, 3.0, 4.0]), "class_weights needs 3 values"),
    (lambda: R.focal(ZL, YL, alpha=[0.1, 0.2], mode="multilabel"), r"weight per channel \(3\)"),
    (lambda: losses.get_loss("lovasz_hinge")(ZC, YC, mode="multiclass"), "use lovasz_softmax"),
])
def test_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
