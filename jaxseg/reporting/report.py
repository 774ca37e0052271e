"""Experiment reports: tables in the layout of thesis Tables 1-4, and figures.

  python -m jaxseg.report runs/exp1_unet runs/exp1_attunet runs/exp1_resattunet [--output runs/report]

Each argument is one arm of an experiment: a workdir of one run, or of several
trials (``trial_<t>/`` folders). Per arm and metric, the value is the thesis's
aggregate (``jaxseg.training.aggregate``, with the rule in the arm's ``config.eval.aggregate``):
per run the median/mean of the last k epochs, then mean (std) over runs; an arm that is
a cross-validation root (``fold_<k>/`` workdirs, ``launch/cv.sh``) gives the mean (std)
over folds of each fold's trial mean (``jaxseg.training.crossval``). Rows are
arms, columns ``loss``, ``val loss`` and the evaluated metrics, each cell
"mean (std)" as in Table 1.

Written to ``--output`` (default: ``report/`` beside the first arm):
``table.md``, ``table.csv`` and, unless ``--no-figures``,
``curves.png`` (training and validation loss and the first metric per epoch,
mean over trials), ``predictions.png`` (validation images: image, annotation,
each arm's prediction — like Figures 12-15) and ``roc_pr.png`` (ROC and PR
curves of each arm over the first ``--max-images`` validation images).
Figures need the arms' data (``config.data``) and checkpoints; tables need
only ``metrics.jsonl``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from jaxseg.errors import JaxsegError
from jaxseg.training import aggregate, crossval
from jaxseg.training.run_log import MetricsLog

LABELS = {"train/loss": "loss", "val/loss": "val loss", "val/balanced_accuracy": "BA", "val/roc_auc": "AUC",
          "val/average_precision": "AP", "val/dice": "DSC", "val/jaccard": "Jaccard", "val/mahd": "MAHD"}


class Arm:
    """One experiment arm: its name, config and the run directories of its trials."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.cross_validated = crossval.is_cv_root(self.path)  # fold_<k>/ workdirs: values over folds
        homes = [d for _, d in crossval.fold_dirs(self.path)] if self.cross_validated else [self.path]
        self.runs = [r for home in homes for r in crossval.run_dirs(home) if (r / "metrics.jsonl").exists()]
        if not self.runs:
            raise JaxsegError(f"{self.path} holds no metrics.jsonl (nor trial_*/ or fold_*/ runs)")
        self.name = name or self.path.name
        self.config = json.loads((self.runs[0] / "config.json").read_text())
        self.records = [MetricsLog.read(r / "metrics.jsonl") for r in self.runs]

    @property
    def metric_keys(self) -> list[str]:
        """train/val loss, then each evaluated metric — a per-class metric (``average=none``) as its
        ``<key>/<class>`` columns, in class order (the metric keys of ``jaxseg.metrics``)."""
        from jaxseg.metrics import MetricCollection

        model = self.config.get("model", {})
        names = MetricCollection(self.config["eval"]["metrics"], num_classes=model.get("num_classes", 1),
                                 mode=model.get("mode")).names
        logged = {k for recs in self.records for r in recs for k in r}
        keys = ["train/loss", "val/loss"]
        for name in names:
            per_class = sorted((k for k in logged if k.startswith(f"val/{name}/")),
                               key=lambda k: int(k.rsplit("/", 1)[1]) if k.rsplit("/", 1)[1].isdigit() else 0)
            keys += per_class or [f"val/{name}"]
        return keys

    def aggregate(self) -> dict:
        rule = self.config["eval"].get("aggregate", {})
        keys = [k for k in self.metric_keys if all(any(k in r for r in recs) for recs in self.records)]
        last, reduce = rule.get("last", 5), rule.get("reduce", "median")
        if self.cross_validated:  # mean (std) over folds of each fold's trial mean
            values = crossval.cross_validated(self.path, last, reduce)
            return {k: values[k] for k in keys if k in values}
        return aggregate.aggregate(self.records, keys=keys, last=last, reduce=reduce)


def table(arms: list[Arm]) -> tuple[list[str], list[list]]:
    """Header and rows ``[name, (mean, std), ...]`` over the union of the arms' metrics."""
    keys: list[str] = []
    for arm in arms:
        keys += [k for k in arm.metric_keys if k not in keys]
    rows = []
    for arm in arms:
        agg = arm.aggregate()
        rows.append([arm.name] + [(agg[k]["mean"], agg[k]["std"]) if k in agg else None for k in keys])
    return keys, rows


def column_label(key: str) -> str:
    """The table's name for a metric key: the thesis's abbreviation; a per-class key as 'name [c]'."""
    if key in LABELS:
        return LABELS[key]
    base, _, cls = key.rpartition("/")
    if cls.isdigit() and base.startswith("val/"):
        name = base.split("(", 1)[0]
        return f"{LABELS.get(name, name.split('/', 1)[-1])} [{cls}]"
    return key.split("/", 1)[-1]


def markdown(keys: list[str], rows: list[list]) -> str:
    head = "| | " + " | ".join(column_label(k) for k in keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 1)]
    for row in rows:
        cells = ["–" if v is None else f"{v[0]:.4f} ({v[1]:.4f})" for v in row[1:]]
        lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, keys: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm"] + [f"{k}_{s}" for k in keys for s in ("mean", "std")])
        for row in rows:
            w.writerow([row[0]] + [x for v in row[1:] for x in ((v[0], v[1]) if v else ("", ""))])


def plot_curves(arms: list[Arm], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = next((k for k in arms[0].metric_keys[2:]), "val/loss")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for arm in arms:
        for ax, key in zip(axes, ("train/loss", "val/loss", metric)):
            epochs = sorted({r["epoch"] for recs in arm.records for r in recs if key in r})
            mean = [np.mean([r[key] for recs in arm.records for r in recs if r.get("epoch") == e and key in r])
                    for e in epochs]
            ax.plot(epochs, mean, label=arm.name)
            ax.set_title(LABELS.get(key, key))
            ax.set_xlabel("epoch")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _validation_arrays(config: dict, max_images: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``max_images`` validation images and masks of an arm's dataset."""
    import ml_collections

    from jaxseg.data import get_source

    source = get_source(ml_collections.ConfigDict(config))
    images, masks = [], []
    for batch in source.eval_batches():
        images.append(batch["image"][batch["valid"]])
        masks.append(batch["mask"][batch["valid"]])
        if sum(len(i) for i in images) >= max_images:
            break
    return np.concatenate(images)[:max_images], np.concatenate(masks)[:max_images]


def _predictions(arms: list[Arm], images: np.ndarray) -> list[np.ndarray]:
    from jaxseg.inference.predict import Predictor

    out = []
    for arm in arms:
        predictor = Predictor(arm.runs[0])
        out.append(np.concatenate([predictor(images[i:i + 8]) for i in range(0, len(images), 8)]))
    return out


def plot_predictions(arms, images, masks, preds, path: Path, panels: int, threshold: float = 0.5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the images with the most foreground first: the interesting ones
    from jaxseg.inference.predict import labels_of
    from jaxseg.models import output_mode

    order = np.argsort(-masks.reshape(len(masks), -1).sum(1))[:panels]
    cols = 2 + len(arms)
    mode = output_mode(arms[0].config.get("model", {}))
    top = max(masks.shape[-1] - 1, 1)  # the label shown: the class index (multiclass), else the last class

    def shown_label(probs):
        labels = labels_of(probs, threshold, mode)
        return labels[..., -1] if labels.ndim == 3 else labels / (top if mode == "multiclass" else 1)

    fig, axes = plt.subplots(len(order), cols, figsize=(2.6 * cols, 2.6 * len(order)), squeeze=False)
    for r, i in enumerate(order):
        truth = masks[i].argmax(-1) / top if mode == "multiclass" else masks[i, ..., -1]
        shown = [images[i, ..., 0], truth] + [shown_label(p[i]) for p in preds]
        titles = ["image", "annotation"] + [a.name for a in arms]
        for c, (img, title) in enumerate(zip(shown, titles)):
            axes[r, c].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def roc_pr_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """(FPR, TPR, recall, precision) over the distinct scores of the foreground channel."""
    from jaxseg.metrics.ranking import score_histogram

    hist = np.asarray(score_histogram(scores[..., -1:], labels[..., -1:]))[0]
    kept = hist[np.flatnonzero(hist[:, 0] | hist[:, 1])][::-1].astype(np.float64)  # descending score
    tp, fp = np.cumsum(kept[:, 1]), np.cumsum(kept[:, 0])
    p, n = max(tp[-1], 1.0), max(fp[-1], 1.0)
    return (np.r_[0, fp / n], np.r_[0, tp / p], np.r_[0, tp / p], np.r_[1, tp / np.maximum(tp + fp, 1)])


def plot_roc_pr(arms, masks, preds, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4.5))
    for arm, p in zip(arms, preds):
        fpr, tpr, rec, prec = roc_pr_points(p, masks)
        roc.plot(fpr, tpr, label=arm.name)
        pr.plot(rec, prec, label=arm.name)
    roc.plot([0, 1], [0, 1], "k:", lw=0.8)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
    roc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(paths: list[str], output: str | None = None, names: list[str] | None = None,
           figures: bool = True, panels: int = 3, max_images: int = 64) -> Path:
    if names and len(names) != len(paths):
        raise JaxsegError(f"{len(names)} names for {len(paths)} workdirs")
    arms = [Arm(p, n) for p, n in zip(paths, names or [None] * len(paths))]
    out = Path(output) if output else arms[0].path.parent / "report"
    out.mkdir(parents=True, exist_ok=True)
    keys, rows = table(arms)
    md = markdown(keys, rows)
    (out / "table.md").write_text(md)
    write_csv(out / "table.csv", keys, rows)
    if figures:
        plot_curves(arms, out / "curves.png")
        try:
            images, masks = _validation_arrays(arms[0].config, max_images)
        except Exception as e:  # noqa: BLE001 - data missing on this machine: tables still stand
            print(f"warning: no prediction figures ({type(e).__name__}: {e})", file=sys.stderr)
            return out
        preds = _predictions(arms, images)
        plot_predictions(arms, images, masks, preds, out / "predictions.png", panels)
        plot_roc_pr(arms, masks, preds, out / "roc_pr.png")
    return out
