"""The shared name → factory registry, and the four registries built on it."""

import dataclasses

import pytest

from configs import default as default_config
from jaxseg import data, losses, metrics, models
from jaxseg.registry import Registry


def test_register_as_decorator_and_call_then_build_checks_keywords():
    r = Registry("widget", inputs=("x",))

    @r.register("double")
    def double(x, factor: int = 2):
        return x * factor

    r.register("same", lambda x: x)
    assert r.names() == ["double", "same"] and "double" in r and "nope" not in r
    assert r.parameters("double") == ["factor"]
    assert r.build("double", 3, factor=5) == 15
    with pytest.raises(ValueError, match=r"widget 'double' has no parameter\(s\) \['size'\]; parameters: \['factor'\]"):
        r.build("double", 3, size=1)
    with pytest.raises(ValueError, match=r"unknown widget 'triple'; available: double, same"):
        r.get("triple")


def test_dataclass_fields_are_the_options_and_kwargs_factories_check_themselves():
    r = Registry("thing", option_word="option")

    @r.register("box")
    @dataclasses.dataclass
    class Box:
        width: int = 1
        height: int = 1

    r.register("free", lambda **kw: kw)
    assert r.parameters("box") == ["width", "height"]
    with pytest.raises(ValueError, match=r"thing 'box' has no option\(s\) \['depth'\]"):
        r.check("box", {"depth": 3})
    assert r.build("free", anything=1) == {"anything": 1}


def test_a_name_cannot_be_registered_twice_for_different_factories():
    r = Registry("widget")
    r.register("a", len)
    r.register("a", len)  # the same factory again (a module imported twice) is fine
    with pytest.raises(ValueError, match="already registered"):
        r.register("a", str)


def test_the_four_registries_share_the_helper():
    assert set(models.available()) >= {"fcn", "unet", "attunet", "resattunet", "unetpp", "transunet"}
    assert set(losses.available()) >= {"dice", "lovasz_hinge", "boundary", "focal_tversky"}
    assert data.available() == ["covid_qu_ex", "folder", "histopathology", "synthetic"]
    assert set(metrics.available()) >= {"dice", "roc_auc", "hausdorff95", "mahd"}
    for registry in (models.MODELS, losses.LOSSES, data.DATASETS, metrics.collection.METRICS):
        assert isinstance(registry, Registry)


@pytest.mark.parametrize("name, field, own_default", [
    ("fcn", "upsample", "transpose"),          # bilinear-initialised transposed convolutions
    ("convnext_unet", "batch_norm", False),    # LayerNorm, per its docstring
    ("convnext_unet", "upsample", "transpose"),
    ("unet", "batch_norm", True),
    ("unet", "upsample", "nearest"),
])
def test_default_config_keeps_each_models_own_defaults(name, field, own_default):
    c = default_config.get_config()
    c.model.name = name
    model = models.get_model(c.model)
    assert getattr(model, field) == own_default


def test_a_set_config_key_still_overrides_the_models_default():
    c = default_config.get_config()
    c.model.name, c.model.upsample = "fcn", "nearest"
    assert models.get_model(c.model).upsample == "nearest"
