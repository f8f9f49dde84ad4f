"""Post-processing of a tumour probability: the body region (air excluded, enclosed dark tissue kept), the
components kept by probability mass, and both applied by predict_images when the settings ask for them."""

import numpy as np
import SimpleITK as sitk
import torch

from sarcomri.seg3d.config import InferSettings
from sarcomri.seg3d.infer import Model, predict_images
from sarcomri.seg3d.postprocess import body_region, keep_components


def _limb(shape=(6, 40, 40)) -> np.ndarray:
    """A limb: a disc of tissue (300) with a dark ring (cortical bone, 20) inside it, in air noise (5-12)."""
    rng = np.random.default_rng(0)
    z, y, x = np.indices(shape)
    r = np.hypot(y - 20, x - 16)
    img = rng.uniform(5, 12, shape)
    img[r < 14] = 300 + rng.normal(0, 20, (r < 14).sum())
    img[(r > 4) & (r < 6)] = 20  # dark, but enclosed by the body
    img[:, :, 36:] = 0  # zero padding of a crop
    return img.astype(np.float32)


def test_body_region_excludes_air_and_keeps_enclosed_dark_tissue():
    arr = _limb()
    body = body_region([sitk.GetImageFromArray(arr)], 0.05)
    z, y, x = np.indices(arr.shape)
    r = np.hypot(y - 20, x - 16)
    assert body[r < 13.5].all()  # tissue and the dark ring inside it
    assert not body[(r > 15) & (arr > 0)].any()  # air
    # a second sequence adds its own body voxels
    other = np.zeros_like(arr)
    other[:, 0:3, 0:3] = 500
    both = body_region([sitk.GetImageFromArray(arr), sitk.GetImageFromArray(other)], 0.05)
    assert both[:, 0:3, 0:3].all() and not body[:, 0:3, 0:3].any()


def test_keep_components_by_probability_mass():
    mask = np.zeros((10, 20, 20), bool)
    prob = np.zeros(mask.shape, np.float32)
    mask[2:6, 2:8, 2:8] = True
    prob[2:6, 2:8, 2:8] = 0.9  # 144 voxels, mass 129.6
    mask[2:6, 12:18, 12:18] = True
    prob[2:6, 12:18, 12:18] = 0.55  # the same volume, mass 79.2 (0.61 of the first)
    mask[8, 10, 10] = True
    prob[8, 10, 10] = 0.6  # an island
    np.testing.assert_array_equal(keep_components(mask, prob, 0.0), mask)
    half = keep_components(mask, prob, 0.5)
    assert half[2:6, 2:8, 2:8].all() and half[2:6, 12:18, 12:18].all() and not half[8, 10, 10]
    only = keep_components(mask, prob, 1.0)
    assert only.sum() == 144 and only[3, 3, 3]
    assert not keep_components(np.zeros_like(mask), prob, 0.5).any()


class _Everywhere(torch.nn.Module):
    """A network that calls every voxel tumour (probability ~0.73), to see what post-processing removes."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x[:, :1]), torch.ones_like(x[:, :1])], dim=1)


def test_predict_images_restricts_to_the_body(tiny_plan):
    arr = _limb((12, 40, 40))
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.2, 1.2, 3.0))
    plan = tiny_plan
    plan.normalisation = "zscore_nonzero"
    model = Model(_Everywhere(), plan)
    base = InferSettings(mirror=False, largest_component=False)
    mask, _ = predict_images([model], [image], base)
    m = sitk.GetArrayFromImage(mask) > 0
    assert m[arr > 0].all() and not m[arr == 0].any()  # everything but the zero padding
    mask, prob = predict_images([model], [image], base.model_copy(update={"restrict_to_body": True}))
    m = sitk.GetArrayFromImage(mask) > 0
    np.testing.assert_array_equal(m, body_region([image], 0.05))
    assert not sitk.GetArrayFromImage(prob)[~m].any()


class _Brightness(torch.nn.Module):
    """Tumour logit = the normalised intensity minus 1: bright blobs are tumour."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x[:, :1]), 3 * (x[:, :1] - 1)], dim=1)


def test_predict_images_keeps_the_components_the_settings_say(tiny_plan):
    arr = np.full((12, 32, 32), 100, np.float32)
    arr[3:9, 4:14, 4:14] = 400  # the tumour: large and bright
    arr[5:7, 22:25, 22:25] = 300  # an island: small, less bright
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.2, 1.2, 3.0))
    model = Model(_Brightness(), tiny_plan)
    s = InferSettings(mirror=False, largest_component=False)
    mask, prob = predict_images([model], [image], s)
    m = sitk.GetArrayFromImage(mask) > 0
    assert m[5, 23, 23] and m[5, 8, 8]  # both found
    kept, _ = predict_images([model], [image], s.model_copy(update={"keep_components": 0.5}))
    k = sitk.GetArrayFromImage(kept) > 0
    assert k[5, 8, 8] and not k[5, 23, 23]
    np.testing.assert_array_equal(k, keep_components(m, sitk.GetArrayFromImage(prob), 0.5))
