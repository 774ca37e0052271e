import numpy as np
import pytest

from jaxseg.data.sources import synthetic


def test_shapes_dtypes_and_ranges():
    images, masks = synthetic.generate(6, 48, "infection", seed=3)
    assert images.shape == (6, 48, 48, 1) and masks.shape == (6, 48, 48, 1)
    assert images.dtype == np.float32 and masks.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(masks)) <= {0.0, 1.0}


def test_deterministic_and_indexable():
    a, ma = synthetic.generate(6, 32, "lung", seed=1)
    b, mb = synthetic.generate(3, 32, "lung", seed=1, start=3)
    np.testing.assert_array_equal(a[3:], b)
    np.testing.assert_array_equal(ma[3:], mb)
    c, _ = synthetic.generate(6, 32, "lung", seed=2)
    assert not np.allclose(a, c)


def test_infection_lies_inside_lungs_and_some_images_are_clean():
    _, inf = synthetic.generate(40, 64, "infection", seed=0)
    _, lung = synthetic.generate(40, 64, "lung", seed=0)
    assert np.all(inf <= lung)
    has_infection = inf.reshape(40, -1).max(axis=1) > 0
    assert 0 < has_infection.sum() < 40
    # infected pixels are brighter than the rest of the lung field on average
    images, _ = synthetic.generate(40, 64, "infection", seed=0)
    assert images[inf > 0].mean() > images[(lung > 0) & (inf == 0)].mean() + 0.05


def test_two_lung_fields():
    from scipy import ndimage

    _, lung = synthetic.generate(5, 64, "lung", seed=7)
    for m in lung[..., 0]:
        assert ndimage.label(m)[1] == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="available: infection, lung"):
        synthetic.generate(1, 32, "kidney")
    with pytest.raises(ValueError, match="at least 16"):
        synthetic.generate(1, 8)


def test_class_tasks_label_the_same_phantoms():
    from jaxseg.data.sources import synthetic

    _, inf = synthetic.generate(6, 32, "infection", seed=3)
    _, lung = synthetic.generate(6, 32, "lung", seed=3)
    _, multi = synthetic.generate(6, 32, "lung_infection", seed=3)
    _, overlap = synthetic.generate(6, 32, "lung_and_infection", seed=3)
    assert multi.shape == (6, 32, 32, 3) and overlap.shape == (6, 32, 32, 2)
    np.testing.assert_array_equal(multi.sum(-1), 1.0)  # one class per pixel
    np.testing.assert_array_equal(multi[..., 0], 1.0 - lung[..., 0])  # background = outside the lungs
    np.testing.assert_array_equal(multi[..., 2], inf[..., 0])
    np.testing.assert_array_equal(multi[..., 1] + multi[..., 2], lung[..., 0])
    np.testing.assert_array_equal(overlap, np.concatenate([lung, inf], -1))  # infection inside lung
    assert (overlap[..., 1] <= overlap[..., 0]).all()
