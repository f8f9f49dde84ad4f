"""Post-processing of a tumour probability map: where a tumour may be, and which connected parts of a mask to keep.

* :func:`body_region`: the voxels of the body, not the air around it. Air on MRI is low-intensity noise, not exact
  zeros (those are padding, :func:`sarcomri.seg3d.infer.nonzero_region`): a voxel belongs to the body when some
  sequence exceeds ``fraction`` of its 99th percentile over the non-zero voxels, with each slice's enclosed holes
  filled (cortical bone and dark tumour inside the body stay in). On sts-t1 the air around a limb is 5-12 on a
  scale where tissue is 200-1,100 and the 99th percentile about 1,050.
* :func:`largest_component`: the largest connected component of a mask image.
* :func:`keep_components`: the connected components (26-connected) of a mask whose summed tumour probability is at
  least ``fraction`` of the largest component's; 0 keeps every one. Weighing by probability keeps a large,
  confident tumour over a spread of doubtful islands in other muscles, the islands the cross-validation on sts-t1
  shows (docs/segmentation3d.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from sarcomri.seg3d.data import on_reference_grid


def body_region(images: Sequence[sitk.Image], fraction: float) -> np.ndarray:
    """The body as a boolean (z, y, x) array on the grid of ``images[0]`` (see the module docstring); the later
    images are resampled onto the first."""
    body = None
    for img in on_reference_grid(images):
        array = sitk.GetArrayViewFromImage(img)
        values = array[array != 0]
        if values.size == 0:
            continue
        inside = array > fraction * float(np.percentile(values, 99))
        body = inside if body is None else body | inside
    if body is None:
        return np.zeros(sitk.GetArrayViewFromImage(images[0]).shape, bool)
    return np.stack([ndimage.binary_fill_holes(s) for s in body])


def keep_components(mask: np.ndarray, probability: np.ndarray, fraction: float) -> np.ndarray:
    """``mask`` with only the connected components whose summed ``probability`` is at least ``fraction`` of the
    largest such sum (``fraction`` 0: ``mask`` unchanged)."""
    if fraction <= 0 or not mask.any():
        return mask
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return mask
    index = np.arange(1, n + 1)
    mass = np.asarray(ndimage.sum(probability, labels, index))
    return np.isin(labels, index[mass >= fraction * mass.max()])


def largest_component(mask: sitk.Image) -> sitk.Image:
    """Keep the largest face-, edge- or corner-connected component of a binary mask (uint8)."""
    cc = sitk.ConnectedComponent(mask, True)
    if sitk.GetArrayViewFromImage(cc).max() == 0:
        return sitk.Cast(mask, sitk.sitkUInt8)
    relabelled = sitk.RelabelComponent(cc, sortByObjectSize=True)
    return sitk.Cast(relabelled == 1, sitk.sitkUInt8)
