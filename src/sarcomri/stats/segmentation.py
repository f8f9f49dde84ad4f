"""Segmentation metrics for binary 3D masks on anisotropic grids: overlap (Dice, IoU, F2, sensitivity,
precision) and surface distances in millimetres (ASSD, HD95, HD).

Definitions (fixed by the project; every number here follows them):

* **Surface** of a mask: the mask minus its binary erosion with the face-connected (6-connected in 3D)
  structuring element. The erosion treats everything outside the array as background
  (``scipy.ndimage.binary_erosion(..., border_value=0)``), which is the same as padding the volume with
  background first: a tumour touching the edge of the field of view has surface voxels on that edge.
* **Surface distances**: for every surface voxel of one mask, the Euclidean distance in mm from its centre
  to the centre of the nearest surface voxel of the other mask: the exact Euclidean distance transform
  ``scipy.ndimage.distance_transform_edt(~surface, sampling=spacing_zyx)`` read at those voxels. Spacing is
  given in array order (z, y, x), i.e. SimpleITK's ``GetSpacing()`` reversed.
* **HD** = the larger of the two directed maxima (the symmetric Hausdorff distance).
* **HD95** = the larger of the two *directed* 95th percentiles, each computed with ``numpy.percentile``'s
  default linear interpolation. (MONAI's ``compute_hausdorff_distance(percentile=95)`` uses the same
  definition; MedPy's ``hd95`` takes the 95th percentile of both directions pooled, which is never
  larger and usually a little smaller.)
* **ASSD** = the mean of the pooled distances of both directions (sum of all distances divided by the
  number of surface voxels of both masks), as MONAI (``symmetric=True``) and MedPy ``assd`` compute it.
  This is not the average of the two directed means when the two surfaces have different sizes.

Speed: both surfaces are computed on the bounding box of the union of both masks, with no margin; every
voxel outside that box is background, so eroding the crop with background outside gives the same surfaces
as eroding the whole volume. The nearest surface voxel of the other mask is then found, exactly, in one of
two ways (:func:`_directed`): a k-d tree search (``scipy.spatial.cKDTree``) over the surface-voxel centres in
mm, whose cost grows with the number of surface voxels rather than with the volume between the masks (a
false-positive blob far from the tumour costs little more than its own surface); or, when an estimate on a
sample of points says the tree would be slower (one surface surrounding the other from afar, e.g. a mask
filling the volume), the feature transform of ``distance_transform_edt`` over the crop, which holds every
surface voxel. Either way the distance is computed from the integer index differences exactly as
``distance_transform_edt`` computes it (``sqrt((dz * sz)**2 + (dy * sy)**2 + (dx * sx)**2)``), so the
values are those of the whole-array transform to the last bit or two (two equally near voxels may round
differently); a voxel on both surfaces is at 0. ``tests/stats/test_segmentation.py`` checks both ways
against the whole-array transform; ``benchmarks/stats_seg.py`` times them against MONAI.

Empty masks (policy, applied by :func:`segmentation_metrics`; the flags ``empty_pred``, ``empty_ref`` and
``both_empty`` mark every case it touches):

* both empty: Dice, IoU, F2, sensitivity and precision are all 0/0. By default (``empty_dice=1.0``, the
  common convention, e.g. MONAI's ``DiceMetric(ignore_empty=False)``) they are 1 and all distances 0
  (perfect agreement: no tumour predicted where there is none); with ``empty_dice=nan`` they and the
  distances are NaN (undefined: the case says nothing about the segmentation);
* exactly one empty: a ratio whose denominator is 0 (sensitivity with an empty reference, precision with
  an empty prediction) is 0, like Dice, IoU and F2; every distance is set to ``empty_distance``, by default
  the diagonal of the whole volume in mm (larger than any distance the grid can hold), and the columns
  ``empty_pred`` / ``empty_ref`` say so. :func:`summarise_segmentation` reports those cases separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from sarcomri.errors import InputError

#: Keys of the dict returned by :func:`segmentation_metrics`, in a stable order.
METRIC_KEYS: tuple[str, ...] = (
    "dice", "iou", "f2", "sensitivity", "precision", "hd95_mm", "assd_mm", "hd_mm",
    "tp", "fp", "fn", "pred_voxels", "ref_voxels", "pred_volume_mm3", "ref_volume_mm3",
    "empty_pred", "empty_ref", "both_empty",
)
#: The allowed values of ``empty_dice`` (Dice and the other overlap ratios when both masks are empty).
EMPTY_DICE_POLICIES: tuple[str, ...] = ("1", "nan")
#: Overlap metrics (all cases are summarised) and distance metrics (cases with both masks non-empty).
OVERLAP_METRICS: tuple[str, ...] = ("dice", "iou", "f2", "sensitivity", "precision")
DISTANCE_METRICS: tuple[str, ...] = ("hd95_mm", "assd_mm", "hd_mm")
#: Surface distances: points sampled to choose between the k-d tree and the distance transform, and the
#: tree's estimated work per voxel of the transform's box below which the tree is used (measured; see
#: :func:`_kd_tree_is_cheaper` and benchmarks/stats_seg.py).
_PROBE_POINTS = 256
_KD_WORK_PER_VOXEL = 8.0


def as_binary(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """A boolean copy-free view (when possible) of a mask that holds only 0 and 1 (or is boolean).

    A label map with other values (2, 3, ... or NaN) is refused: select one label first (``mask == k``).
    """
    arr = np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(None, f"{name} must be a boolean or numeric array, not {arr.dtype}")
    fg = arr != 0
    values = arr[fg]
    if values.size and not np.all(values == 1):
        bad = np.unique(values[values != 1])[:5]
        raise InputError(None, f"{name} is not binary: it holds values {', '.join(map(str, bad))} besides 0 "
                               "and 1 (select one label, e.g. mask == 1)")
    return fg


def check_spacing(spacing: Sequence[float], ndim: int) -> np.ndarray:
    """Spacing as a float array of length ``ndim``, refusing non-positive or non-finite values."""
    sp = np.asarray(spacing, dtype=float).ravel()
    if sp.size != ndim:
        raise InputError(None, f"spacing has {sp.size} values but the masks have {ndim} dimensions "
                               "(give the spacing in array order, e.g. (z, y, x) in mm)")
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise InputError(None, f"spacing must be positive and finite, got {tuple(sp.tolist())}")
    return sp


def _pair(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p, r = as_binary(pred, "prediction"), as_binary(ref, "reference")
    if p.shape != r.shape:
        raise InputError(None, f"prediction shape {p.shape} differs from reference shape {r.shape}")
    if p.ndim < 1:
        raise InputError(None, "masks must have at least one dimension")
    return p, r, check_spacing(spacing, p.ndim)


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box (slices, no margin) of the foreground of a boolean mask, or None when it is empty.

    One ``any`` projection per axis: several times faster than ``ndimage.find_objects`` on a large volume.
    """
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _union_box(pred: np.ndarray, ref: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box (slices) of the union of both masks, or None when both are empty."""
    return _bounding_box(np.logical_or(pred, ref))


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels of a boolean mask: the mask minus its face-connected erosion, background outside.

    The same as ``mask & ~binary_erosion(mask, generate_binary_structure(ndim, 1), border_value=0)``, computed
    with one AND per face neighbour on a copy padded with one background voxel (about 3x faster).
    """
    m = np.asarray(mask, dtype=bool)
    padded = np.pad(m, 1, constant_values=False)
    interior = m.copy()
    for axis in range(m.ndim):
        for shifted in (slice(None, -2), slice(2, None)):
            window = [slice(1, -1)] * m.ndim
            window[axis] = shifted
            interior &= padded[tuple(window)]
    return m & ~interior


def _kd_tree_is_cheaper(tree: cKDTree, points_mm: np.ndarray, box_voxels: int, spacing: np.ndarray) -> bool:
    """Whether searching ``tree`` for the nearest neighbour of every point beats a distance transform of the box.

    A search costs about the number of tree points within the nearest distance plus one voxel (the largest
    spacing): a few dozen when the other surface is near or curves away, thousands when it surrounds the
    point from afar (a prediction well inside a large reference, a mask filling the whole volume), where the
    tree can be 20 times slower than the transform. The transform costs the box volume. The count is
    estimated on an evenly spread sample of :data:`_PROBE_POINTS` points; the tree is chosen while the
    estimated work stays under :data:`_KD_WORK_PER_VOXEL` per box voxel (both methods are exact).
    """
    step = max(1, len(points_mm) // _PROBE_POINTS)
    sample = points_mm[::step]
    nearest, _ = tree.query(sample)
    work = tree.query_ball_point(sample, nearest + spacing.max(), return_length=True).mean() * len(points_mm)
    return bool(work < _KD_WORK_PER_VOXEL * box_voxels)


def _directed(from_voxels: np.ndarray, to_surface: np.ndarray, to_voxels: np.ndarray,
              spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) from each voxel of ``from_voxels`` to the nearest voxel of ``to_surface``.

    ``from_voxels`` and ``to_voxels`` (the voxels of ``to_surface``) are index arrays of shape (ndim, n). A
    voxel on both surfaces is at 0 and not searched. For the others the nearest voxel comes from an exact k-d
    tree search on the centres in mm (an unbalanced tree with 32-point leaves: the fastest to build and query
    here) or, when :func:`_kd_tree_is_cheaper` says the tree would be slower, from the feature transform of
    ``distance_transform_edt``; the distance is then computed from the index differences exactly as that
    transform computes it.
    """
    out = np.zeros(from_voxels.shape[1])
    search = ~to_surface[tuple(from_voxels)]
    src = from_voxels[:, search]
    if src.shape[1] == 0:
        return out
    scale = spacing[:, None]
    src_mm = (src * scale).T
    tree = cKDTree((to_voxels * scale).T, leafsize=32, balanced_tree=False, compact_nodes=False)
    if _kd_tree_is_cheaper(tree, src_mm, to_surface.size, spacing):
        nearest = to_voxels[:, tree.query(src_mm)[1]]
    else:
        features = ndimage.distance_transform_edt(~to_surface, sampling=spacing, return_distances=False,
                                                  return_indices=True)
        nearest = features[(slice(None), *src)]
    diff = (nearest - src).astype(np.float64) * scale
    out[search] = np.sqrt(np.add.reduce(diff * diff, axis=0))
    return out


def _both_directions(pred: np.ndarray, ref: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances (prediction -> reference, reference -> prediction) of two non-empty masks.

    Each array follows the C order of the first mask's surface voxels (``np.nonzero`` order).
    """
    ps, rs = surface(pred), surface(ref)
    p_idx, r_idx = np.stack(np.nonzero(ps)), np.stack(np.nonzero(rs))
    return _directed(p_idx, rs, r_idx, spacing), _directed(r_idx, ps, p_idx, spacing)


def surface_distances(pred: np.ndarray, ref: np.ndarray,
                      spacing_zyx: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances in mm: (prediction -> reference, reference -> prediction).

    Each array holds one distance per surface voxel of the first mask, in C order of the voxels. Both
    masks must be non-empty (an empty mask has no surface to measure from or to).
    """
    p, r, sp = _pair(pred, ref, spacing_zyx)
    if not p.any() or not r.any():
        raise InputError(None, "surface distances need two non-empty masks (prediction empty: "
                               f"{not p.any()}, reference empty: {not r.any()})")
    box = _union_box(p, r)
    return _both_directions(p[box], r[box], sp)


def volume_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length in mm of the diagonal of the whole volume (``shape`` voxels of size ``spacing``)."""
    return float(np.sqrt(np.sum((np.asarray(shape, float) * np.asarray(spacing, float)) ** 2)))


def check_empty_dice(empty_dice: float | str) -> float:
    """The empty-mask policy as a float, 1.0 or NaN; refuse anything else (a Dice of 0.5 for two empty masks
    would be a number nobody can interpret)."""
    try:
        value = float(empty_dice)
    except (TypeError, ValueError):
        value = 0.0
    if value == 1.0 or np.isnan(value):
        return value
    raise InputError(None, f"empty_dice must be 1 or nan (the Dice of two empty masks), got {empty_dice!r}")


def _ratio(num: int, den: int, both_empty: bool, empty_dice: float) -> float:
    if den == 0:
        return empty_dice if both_empty else 0.0
    return num / den


def segmentation_metrics(pred: np.ndarray, ref: np.ndarray, spacing_zyx: Sequence[float],
                         empty_distance: float | None = None,
                         empty_dice: float = 1.0) -> dict[str, float | int | bool]:
    """Overlap and surface-distance metrics of one predicted mask against its reference.

    ``pred`` and ``ref`` are binary arrays of the same shape (boolean, or numeric 0/1); ``spacing_zyx`` is
    the voxel size in mm in array order. ``empty_distance`` (mm) replaces every distance when exactly one
    mask is empty; None means the volume diagonal (:func:`volume_diagonal_mm`); ``float('inf')`` is allowed
    for callers who prefer to see the failure as infinite. ``empty_dice`` is the policy for two empty masks,
    where Dice, IoU, F2, sensitivity and precision are all 0/0: ``1.0`` (default, the usual convention:
    perfect agreement, distances 0) or ``float('nan')`` (undefined: those five and the distances are NaN);
    any other value raises :class:`InputError`. Keys are :data:`METRIC_KEYS`:

    * ``dice`` = 2TP / (2TP + FP + FN); ``iou`` = TP / (TP + FP + FN);
    * ``f2`` = F-beta with beta = 2 (recall weighted): 5TP / (5TP + 4FN + FP);
    * ``sensitivity`` (recall) = TP / (TP + FN); ``precision`` = TP / (TP + FP);
    * ``hd95_mm``, ``assd_mm``, ``hd_mm``: see the module docstring;
    * ``tp``, ``fp``, ``fn``, ``pred_voxels``, ``ref_voxels`` (voxel counts) and the volumes in mm3;
    * ``empty_pred``, ``empty_ref``, ``both_empty``: booleans flagging the empty-mask policy.
    """
    empty_dice = check_empty_dice(empty_dice)
    p, r, sp = _pair(pred, ref, spacing_zyx)
    box = _union_box(p, r)
    voxel_mm3 = float(np.prod(sp))
    if box is None:
        tp = fp = fn = 0
        pc = rc = 0
    else:
        pb, rb = p[box], r[box]
        pc, rc = int(np.count_nonzero(pb)), int(np.count_nonzero(rb))
        tp = int(np.count_nonzero(pb & rb))
        fp, fn = pc - tp, rc - tp
    empty_pred, empty_ref = pc == 0, rc == 0
    both = empty_pred and empty_ref
    out: dict[str, float | int | bool] = {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, both, empty_dice),
        "iou": _ratio(tp, tp + fp + fn, both, empty_dice),
        "f2": _ratio(5 * tp, 5 * tp + 4 * fn + fp, both, empty_dice),
        "sensitivity": _ratio(tp, tp + fn, both, empty_dice),
        "precision": _ratio(tp, tp + fp, both, empty_dice),
    }
    if both:
        hd95 = assd = hd = 0.0 if empty_dice == 1.0 else float("nan")
    elif empty_pred or empty_ref:
        penalty = volume_diagonal_mm(p.shape, sp) if empty_distance is None else float(empty_distance)
        hd95 = assd = hd = penalty
    else:
        d_pr, d_rp = _both_directions(pb, rb, sp)
        hd95 = float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)))
        assd = float((d_pr.sum() + d_rp.sum()) / (d_pr.size + d_rp.size))
        hd = float(max(d_pr.max(), d_rp.max()))
    out.update(hd95_mm=hd95, assd_mm=assd, hd_mm=hd, tp=tp, fp=fp, fn=fn, pred_voxels=pc, ref_voxels=rc,
               pred_volume_mm3=pc * voxel_mm3, ref_volume_mm3=rc * voxel_mm3,
               empty_pred=empty_pred, empty_ref=empty_ref, both_empty=both)
    return out


def summarise_segmentation(table: pd.DataFrame, metrics: Iterable[str] | None = None,
                           include_empty_distances: bool = False) -> pd.DataFrame:
    """Summarise a per-case table (one row per case, columns of :func:`segmentation_metrics`).

    Returns one row per metric with ``n`` (cases used), ``median``, ``q1``, ``q3``, ``iqr``, ``mean``,
    ``std`` (sample, ddof=1), ``min``, ``max`` and the counts ``n_cases``, ``n_empty_pred``,
    ``n_empty_ref`` and ``n_both_empty``. Overlap metrics use every case (a missed tumour is a Dice of 0,
    and that belongs in the average). Distance metrics use only cases where both masks are non-empty
    unless ``include_empty_distances`` is true (then the ``empty_distance`` penalties are averaged in);
    the counts say how many cases were left out. A NaN in a metric column is refused, not skipped.
    """
    for flag in ("empty_pred", "empty_ref"):
        if flag not in table.columns:
            raise InputError(None, f"per-case table has no column {flag!r} (use segmentation_metrics rows)")
    names = list(metrics) if metrics is not None else [m for m in OVERLAP_METRICS + DISTANCE_METRICS
                                                       if m in table.columns]
    empty_pred = table["empty_pred"].astype(bool).to_numpy()
    empty_ref = table["empty_ref"].astype(bool).to_numpy()
    both_present = ~empty_pred & ~empty_ref
    rows = []
    for name in names:
        if name not in table.columns:
            raise InputError(None, f"per-case table has no column {name!r}")
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
        if np.isnan(values).any():
            raise InputError(None, f"column {name!r} has {int(np.isnan(values).sum())} missing values; "
                                   "compute every case with segmentation_metrics (with the default "
                                   "empty_dice=1 it never returns NaN)")
        if name in DISTANCE_METRICS and not include_empty_distances:
            values = values[both_present]
        q1, med, q3 = np.percentile(values, [25, 50, 75]) if values.size else (np.nan,) * 3
        rows.append({
            "metric": name, "n": int(values.size), "median": med, "q1": q1, "q3": q3, "iqr": q3 - q1,
            "mean": values.mean() if values.size else np.nan,
            "std": values.std(ddof=1) if values.size > 1 else np.nan,
            "min": values.min() if values.size else np.nan, "max": values.max() if values.size else np.nan,
            "n_cases": len(table), "n_empty_pred": int(empty_pred.sum()), "n_empty_ref": int(empty_ref.sum()),
            "n_both_empty": int((empty_pred & empty_ref).sum()),
        })
    return pd.DataFrame(rows).set_index("metric")
