"""Configs: variants, command-line overrides, and clear errors for bad configs."""

import os
import re
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from configs import default as default_config
from jaxseg.training.config_check import ConfigError, validate_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(*overrides, variant=""):
    argv = ["prog", f"--config={os.path.join(ROOT, 'configs/default.py')}{variant}", *overrides]
    fv = flags.FlagValues()  # as jaxseg.main defines it, reading overrides from argv
    config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True, sys_argv=argv)
    fv(argv)
    return fv.config


def test_overrides_reach_the_config():
    c = _parse("--config.train.epochs=3", "--config.optimizer.learning_rate=0.5",
               "--config.model.name=unet", variant=":smoke")
    assert c.train.epochs == 3 and c.optimizer.learning_rate == 0.5
    assert c.data.image_size == 32  # from the smoke variant
    validate_config(c)


def test_unknown_key_and_wrong_type_are_rejected():
    with pytest.raises(Exception, match="epochz"):
        _parse("--config.train.epochz=3")
    with pytest.raises(Exception, match="epochs"):
        _parse("--config.train.epochs=three")


def test_default_config_is_valid_and_variants_are_checked():
    validate_config(default_config.get_config())
    with pytest.raises(ValueError, match="available: smoke"):
        default_config.get_config("nope")


@pytest.mark.parametrize("path,value,message", [
    ("model.name", "vnet", "is not a model; available: .*unet"),
    ("loss.name", "hinge", "unknown loss 'hinge'; available:"),
    ("eval.checkpoint_metric", "auc", "is not among config.eval.metrics"),
    ("optimizer.name", "lion", "available: adam"),
    ("train.dtype", "int8", "use float32, bfloat16"),
    ("data.image_size", 36, r"not divisible by 2\^\(depth-1\)=8"),
    ("train.nonfinite", "ignore", "use 'stop' or 'skip'"),
    ("model.deep_supervision", True, r"model 'unet' has no option\(s\) \['deep_supervision'\]"),
    ("optimizer.schedule", "step", "available: constant, cosine, poly"),
    ("eval.metrics", ("dice", "hausdorff95(on=edges)"), "config.eval.metrics: .*on"),
    ("eval.checkpoint_mode", "up", "must be 'auto', 'max' or 'min'"),
    ("data.name", "kaggle", "is not a dataset; available: covid_qu_ex, folder, histopathology, synthetic"),
    ("data.crop_size", 128, "crop_size=128 is larger than the image"),
])
def test_invalid_values_give_one_clear_message(path, value, message):
    c = default_config.get_config()
    section, key = path.split(".")
    with c.unlocked():
        c[section][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(c)


def test_checkpoint_mode_auto_follows_the_metric():
    from jaxseg.training import checkpoint_mode

    c = default_config.get_config()
    assert checkpoint_mode(c) == "max"  # dice
    c.eval.metrics = ("dice", "hausdorff95(on=boundary)")
    c.eval.checkpoint_metric = "hausdorff95(on=boundary)"
    validate_config(c)
    assert checkpoint_mode(c) == "min"
    c.eval.checkpoint_metric = "loss"
    assert checkpoint_mode(c) == "min"


def test_a_rotated_crop_must_fit_in_its_patch():
    from configs import boundary_tversky

    c = boundary_tversky.get_config("linear")
    validate_config(c)  # Table 7: 256² crops rotated up to 180° in 512² patches (needs 363²)
    c.data.image_size = 384
    with pytest.raises(ConfigError, match=r"need 543×543 pixels but a patch is 512×512"):
        validate_config(c)
    c.data.rotation_limit = 0.0
    validate_config(c)


def test_several_problems_are_reported_together():
    c = default_config.get_config()
    c.model.name, c.train.dtype = "vnet", "int8"
    with pytest.raises(ConfigError) as e:
        validate_config(c)
    assert "vnet" in str(e.value) and "int8" in str(e.value)


def test_command_line_errors_before_compiling(tmp_path):
    """Bad config and unwritable workdir: non-zero exit, a clear message, nothing trained."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (["--config.model.name=vnet", f"--workdir={tmp_path / 'a'}"], "available:"),
        ([f"--workdir={blocker / 'sub'}"], "cannot be written"),
    ]
    for args, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "jaxseg.main", "--config=configs/default.py:smoke", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0
        assert message in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "a" / "metrics.jsonl").exists()


@pytest.mark.parametrize("overrides, message", [
    (dict(mode="softmax"), "config.model: mode must be one of binary, multiclass, multilabel; got 'softmax'"),
    (dict(mode="binary", num_classes=3), "config.model: mode='binary' has one channel but num_classes=3"),
    (dict(mode="multiclass", num_classes=1), "config.model: mode='multiclass' needs num_classes >= 2"),
    (dict(mode="multiclass", num_classes=2), "config.data.task='infection' has 1 class channel(s)"),
])
def test_mode_and_classes_must_fit(overrides, message):
    from configs import default

    c = default.get_config()
    c.model.update(overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(c)


def test_resuming_with_another_mode_is_a_config_change():
    from configs import default
    from jaxseg.training.config_check import resume_changes

    a = default.get_config("smoke")
    b = default.get_config("smoke")
    b.model.mode, b.model.num_classes = "multilabel", 1
    assert resume_changes(a.to_dict(), b.to_dict()) == ["model.mode: 'binary' -> 'multilabel'"]
    b.model.mode, b.model.batch_norm = "binary", True  # the U-Net's own default: no change
    assert resume_changes(a.to_dict(), b.to_dict()) == []
