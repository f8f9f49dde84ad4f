"""The data of the page's slice viewer (``sarcomri/web/viewer.js``): one series cropped around the tumour, its
mask and the Grad-CAM of one slice, packed small enough to embed in the page (a few hundred kB).

The crop is the tumour's context box (:func:`~sarcomri.report.patient_figures.context_box` of the mask projected
over the slices) on every slice, subsampled in-plane to at most :data:`MAX_SIDE` pixels; intensities are
quantised to 16 bits over the crop's range (the viewer shows them in the series' own units), so window and level
can be set in the page.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from sarcomri.report.patient_figures import context_box, place_cam, window

if TYPE_CHECKING:
    from sarcomri.predict_scoring import View

#: The largest in-plane side of the viewer's crop, in pixels.
MAX_SIDE = 192


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def viewer_script() -> str:
    """The viewer's JavaScript, to be inlined in a page."""
    return resources.files("sarcomri").joinpath("web", "viewer.js").read_text(encoding="utf-8")


def viewer_payload(view: View, start: int, cam: np.ndarray | None = None, cam_slice: int | None = None,
                   cam_box: tuple[int, int, int, int] | None = None) -> dict[str, Any]:
    """The viewer's data for ``view``, opening at slice ``start``; ``cam`` on slice ``cam_slice`` was computed on
    the network's input crop ``cam_box`` of that slice."""
    y0, y1, x0, x1 = context_box(view.mask.max(axis=0), scale=2.0)
    step = max(1, int(np.ceil(max(y1 - y0, x1 - x0) / MAX_SIDE)))
    crop = np.asarray(view.volume[:, y0:y1:step, x0:x1:step], np.float64)
    finite = crop[np.isfinite(crop)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scale = (high - low) / 65535 if high > low else 1.0
    quantised = np.round((np.nan_to_num(crop, nan=low) - low) / scale).clip(0, 65535).astype("<u2")
    mask = (view.mask[:, y0:y1:step, x0:x1:step] > 0).astype(np.uint8)
    packed_cam = None
    if cam is not None and cam_slice is not None and cam_box is not None:
        placed = place_cam(cam, cam_box, view.volume.shape[1:])[y0:y1:step, x0:x1:step]
        packed_cam = _b64(np.where(np.isfinite(placed), 1 + np.round(254 * np.nan_to_num(placed)), 0).astype(np.uint8))
    return {"sequence": view.sequence, "shape": list(quantised.shape),
            "spacing": [view.spacing[0] * step, view.spacing[1] * step, view.spacing[2]],
            "voxels": _b64(quantised), "offset": low, "scale": scale, "window": list(window(view.volume)),
            "mask": _b64(mask), "cam": packed_cam, "cam_slice": cam_slice, "start": int(start)}


def viewer_json(payload: dict[str, Any]) -> str:
    """The payload as JSON safe inside a ``<script type="application/json">`` element."""
    return json.dumps(payload).replace("</", "<\\/")
