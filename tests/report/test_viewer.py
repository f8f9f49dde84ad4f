"""The slice viewer's data: the crop decodes back to the volume's intensities (16-bit steps), the mask and the
Grad-CAM land where they were, large slices are subsampled, and the JSON cannot close its script element."""

import base64
import json

import numpy as np
import pytest

from sarcomri.predict_scoring import View
from sarcomri.report.viewer import MAX_SIDE, viewer_json, viewer_payload, viewer_script


def _view(side: int = 64, spacing=(0.5, 0.5, 4.0)) -> View:
    rng = np.random.default_rng(0)
    vol = rng.normal(300.0, 50.0, (6, side, side))
    mask = np.zeros(vol.shape, np.uint8)
    c = side // 2
    mask[2:4, c - 4 : c + 4, c - 5 : c + 5] = 1
    return View("T2axi", vol, mask, spacing)


def _decode(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def test_the_crop_decodes_to_the_volume_and_its_mask():
    view = _view()
    data = viewer_payload(view, start=3)
    z, h, w = data["shape"]
    assert (z, h, w) == (6, 32, 32)  # the context box: 2 x the tumour's 10-pixel side, at least 32
    raw = data["offset"] + _decode(data["voxels"], "<u2").reshape(z, h, w) * data["scale"]
    y0, x0 = 32 - 16, 32 - 16
    crop = view.volume[:, y0 : y0 + 32, x0 : x0 + 32]
    assert np.abs(raw - crop).max() <= data["scale"] / 2 + 1e-9
    mask = _decode(data["mask"], np.uint8).reshape(z, h, w)
    np.testing.assert_array_equal(mask, view.mask[:, y0 : y0 + 32, x0 : x0 + 32])
    assert data["window"] == pytest.approx(list(np.percentile(view.volume, [1, 99])))
    assert data["start"] == 3 and data["cam"] is None and data["spacing"] == [0.5, 0.5, 4.0]


def test_the_gradcam_is_put_back_where_the_network_saw_it():
    view = _view()
    cam = np.linspace(0, 1, 16 * 16).reshape(16, 16)
    data = viewer_payload(view, 2, cam, cam_slice=2, cam_box=(24, 40, 22, 38))  # 16 x 16 pixels, no zoom
    packed = _decode(data["cam"], np.uint8).reshape(data["shape"][1:])
    inside = packed[24 - 16 : 40 - 16, 22 - 16 : 38 - 16]
    np.testing.assert_array_equal(inside, 1 + np.round(254 * cam))
    assert (packed == 0).sum() == packed.size - 256 and data["cam_slice"] == 2


def test_large_slices_are_subsampled_and_the_json_is_script_safe():
    view = _view(side=512, spacing=(0.4, 0.4, 5.0))
    view.mask[:] = 0
    view.mask[2:4, 56:456, 56:456] = 1  # a 400-pixel tumour: an 800-pixel box, clipped to the slice
    data = viewer_payload(view, 2)
    assert max(data["shape"][1:]) <= MAX_SIDE and data["spacing"][0] == pytest.approx(0.4 * 3)
    text = viewer_json({**data, "sequence": "</script><b>"})
    assert "</script>" not in text and json.loads(text)["sequence"] == "</script><b>"
    assert "slice-viewer" in viewer_script()
