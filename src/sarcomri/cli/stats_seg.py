"""`sarcomri stats seg`: Dice, IoU, F2, sensitivity, precision, HD95, ASSD and HD of one predicted mask
against its reference mask (NIfTI or any format SimpleITK reads)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import typer
from rich.console import Console
from rich.table import Table

from sarcomri.errors import InputError
from sarcomri.io.images import same_grid
from sarcomri.io.niftifile import read_image
from sarcomri.stats.segmentation import METRIC_KEYS, segmentation_metrics

#: Keys of ``--json`` output besides :data:`sarcomri.stats.segmentation.METRIC_KEYS`.
EXTRA_JSON_KEYS = ("pred", "ref", "label", "spacing_zyx_mm", "shape_zyx")

_ROWS = (
    ("dice", "Dice", "{:.4f}"), ("iou", "IoU (Jaccard)", "{:.4f}"), ("f2", "F2 (recall-weighted)", "{:.4f}"),
    ("sensitivity", "Sensitivity (recall)", "{:.4f}"), ("precision", "Precision", "{:.4f}"),
    ("hd95_mm", "HD95 (mm)", "{:.2f}"), ("assd_mm", "ASSD (mm)", "{:.2f}"), ("hd_mm", "HD (mm)", "{:.2f}"),
    ("pred_volume_mm3", "Predicted volume (mL)", "ml"), ("ref_volume_mm3", "Reference volume (mL)", "ml"),
)


def require_same_grid(a: sitk.Image, b: sitk.Image, path_a: Path, path_b: Path,
                      fix: str = "resample the prediction onto the reference grid first") -> None:
    """Raise naming both files and every geometry property (size, spacing, origin, direction) that differs."""
    if same_grid(a, b):
        return
    props = {"size": (a.GetSize(), b.GetSize()), "spacing": (a.GetSpacing(), b.GetSpacing()),
             "origin": (a.GetOrigin(), b.GetOrigin()), "direction": (a.GetDirection(), b.GetDirection())}
    diffs = []
    for name, (a, b) in props.items():
        if len(a) != len(b) or not np.allclose(a, b, atol=1e-4):
            diffs.append(f"{name} {tuple(round(v, 4) for v in a)} vs {tuple(round(v, 4) for v in b)}")
    raise InputError(path_a, f"not on the same voxel grid as {path_b}: {'; '.join(diffs)} ({fix})")


def _binary(image: sitk.Image, path: Path, label: int | None) -> np.ndarray:
    arr = sitk.GetArrayViewFromImage(image)
    if arr.ndim != 3:
        raise InputError(path, f"expected a 3D mask, got {arr.ndim} dimensions")
    if label is not None:
        return arr == label
    values = np.unique(arr)
    if not np.isin(values, (0, 1)).all():
        raise InputError(path, f"mask holds values {', '.join(map(str, values[:8]))}; give --label to pick one")
    return arr == 1


class EmptyDice(StrEnum):
    """The value of Dice (and IoU, F2, sensitivity, precision) when both masks are empty."""

    one = "1"
    nan = "nan"


def seg(
    pred: Path = typer.Option(..., "--pred", help="Predicted (automatic) segmentation mask, e.g. PRED.nii.gz."),
    ref: Path = typer.Option(..., "--ref", help="Reference (ground-truth, manual) mask on the same voxel grid."),
    label: int | None = typer.Option(None, "--label", help="Label value to evaluate in multi-label masks; "
                                     "by default the masks must be binary (0/1)."),
    empty_distance: float | None = typer.Option(
        None, "--empty-distance", help="Distance (mm) reported when exactly one mask is empty; default: the "
        "diagonal of the volume. 'inf' is accepted."),
    empty_dice: EmptyDice = typer.Option(
        EmptyDice.one, "--empty-dice", help="When BOTH masks are empty (no tumour predicted, none in the "
        "reference) Dice, IoU, F2, sensitivity and precision are 0/0: '1' (default, the usual convention) "
        "counts it as perfect agreement with distances 0; 'nan' reports them and the distances as undefined "
        "(NaN; null in --json). Either way both_empty says so."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: dice, iou, f2, sensitivity, precision, "
                                 "hd95_mm, assd_mm, hd_mm, tp, fp, fn, pred_voxels, ref_voxels, "
                                 "pred_volume_mm3, ref_volume_mm3, empty_pred, empty_ref, both_empty, pred, "
                                 "ref, label, spacing_zyx_mm, shape_zyx (NaN as null)."),
) -> None:
    """Overlap (Dice, IoU, F2, sensitivity, precision) and surface distances (HD95, ASSD, HD in mm) of a
    predicted tumour mask against the reference. Surfaces: mask minus its face-connected erosion; exact
    Euclidean distances with the voxel spacing read from the files; HD95 = larger of the two directed 95th
    percentiles. Two empty masks: see --empty-dice. See sarcomri.stats.segmentation for the definitions and
    the empty-mask policy."""
    pred_img, ref_img = read_image(pred), read_image(ref)
    require_same_grid(pred_img, ref_img, pred, ref)
    spacing_zyx = tuple(float(s) for s in reversed(ref_img.GetSpacing()))
    p, r = _binary(pred_img, pred, label), _binary(ref_img, ref, label)
    result = segmentation_metrics(p, r, spacing_zyx, empty_distance=empty_distance,
                                  empty_dice=float(empty_dice.value))
    if as_json:
        payload = {k: _json_value(result[k]) for k in METRIC_KEYS}
        payload.update(pred=str(pred), ref=str(ref), label=label, spacing_zyx_mm=list(spacing_zyx),
                       shape_zyx=list(p.shape))
        typer.echo(json.dumps(payload, indent=2, default=float))
        return
    _print_table(result, pred, ref, spacing_zyx)


def _json_value(value):
    """NaN (undefined, ``--empty-dice nan``) as null; everything else as it is."""
    return None if isinstance(value, float) and np.isnan(value) else value


def _print_table(result: dict, pred: Path, ref: Path, spacing_zyx: tuple[float, ...]) -> None:
    """The metrics as a rich table, the voxel counts, and a note when a mask is empty."""
    table = Table("metric", "value", title=f"{pred.name} vs {ref.name}")
    for key, name, fmt in _ROWS:
        value = result[key]
        table.add_row(name, f"{value / 1000:.2f}" if fmt == "ml" else fmt.format(value))
    table.add_row("Both masks empty", "yes" if result["both_empty"] else "no")
    con = Console()
    con.print(table)
    con.print(f"TP {result['tp']}, FP {result['fp']}, FN {result['fn']} voxels; spacing (z, y, x) "
              f"{' x '.join(f'{s:g}' for s in spacing_zyx)} mm")
    if result["empty_pred"] or result["empty_ref"]:
        which = "both masks are" if result["both_empty"] else (
            "the prediction is" if result["empty_pred"] else "the reference is")
        con.print(f"[yellow]note:[/] {which} empty; see --empty-dice and the empty-mask policy in "
                  "sarcomri.stats.segmentation")
