"""`sarcomri radiomics`: IBSI-compliant first-order radiomics of an MRI volume inside a tumour mask."""

from __future__ import annotations

import json
import warnings
from enum import StrEnum
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import typer
from rich.console import Console
from rich.table import Table

from sarcomri.cli.stats_seg import require_same_grid
from sarcomri.errors import InputError
from sarcomri.io.niftifile import read_image
from sarcomri.radiomics.discretise import ADC_UNIT_SCALE
from sarcomri.radiomics.firstorder import IBSI_CODES, PYRADIOMICS_NAMES, discretise, firstorder_features, roi_values
from sarcomri.radiomics.histogram import histogram_features

app = typer.Typer(help="IBSI-compliant radiomics (first-order intensity features) inside a tumour mask.",
                  no_args_is_help=True)


class AdcUnit(StrEnum):
    mm2_s = "mm2/s"
    e3 = "1e-3 mm2/s"
    e6 = "1e-6 mm2/s"


@app.callback()
def _group() -> None:
    """IBSI-compliant radiomics (first-order intensity features) inside a tumour mask."""


@app.command("firstorder")
def firstorder(
    image: Path = typer.Option(..., "--image", help="MRI volume (NIfTI or any SimpleITK format), e.g. T2WI or ADC."),
    mask: Path = typer.Option(..., "--mask", help="Tumour mask (region of interest) on the same voxel grid."),
    bin_width: float | None = typer.Option(
        None, "--bin-width", help="Fixed bin width (pyradiomics binWidth) in the image unit after --adc-unit/"
        "--scale; default 25 (pyradiomics) unless --bin-count is given."),
    bin_count: int | None = typer.Option(None, "--bin-count", help="Fixed bin count (pyradiomics binCount)."),
    voxel_array_shift: float = typer.Option(
        0.0, "--voxel-array-shift", help="Added to intensities for energy, total energy and RMS (pyradiomics "
        "voxelArrayShift; 0 gives the IBSI values)."),
    adc_unit: AdcUnit | None = typer.Option(
        None, "--adc-unit", help="Unit the ADC map is stored in; intensities are converted to 10^-3 mm2/s so "
        "that bin widths mean the same for every scanner."),
    scale: float | None = typer.Option(None, "--scale", help="Multiply intensities by this before computing "
                                       "features (any other unit conversion)."),
    label: int | None = typer.Option(None, "--label", help="Mask label of the region of interest (default: all "
                                     "non-zero voxels)."),
    histogram: bool = typer.Option(False, "--histogram", help="Also compute the IBSI intensity-histogram "
                                   "features (mode, histogram gradients, ...) on the discretised intensities."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: {feature: value} with snake_case names "
                                 "(see sarcomri.radiomics.firstorder; null where undefined), plus 'settings'."),
) -> None:
    """First-order radiomics inside the mask: IBSI intensity statistics (mean, variance, skewness, excess
    kurtosis, percentiles, MAD, robust MAD, median absolute deviation, CoV, QCoD, energy, RMS) and
    pyradiomics' first-order set (total energy, entropy, uniformity on the discretised intensities, Pearson
    kurtosis). Validated against the IBSI digital phantom."""
    if adc_unit is not None and scale is not None:
        raise InputError(None, "give either --adc-unit or --scale, not both")
    factor = ADC_UNIT_SCALE[adc_unit.value] if adc_unit is not None else (1.0 if scale is None else scale)
    img, msk = read_image(image), read_image(mask)
    require_same_grid(img, msk, mask, image, fix="resample the mask onto the image grid first")
    arr, marr = sitk.GetArrayViewFromImage(img), sitk.GetArrayViewFromImage(msk)
    if arr.ndim != 3:
        raise InputError(image, f"expected a 3D volume, got {arr.ndim} dimensions")
    spacing_zyx = tuple(float(s) for s in reversed(img.GetSpacing()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            feats = firstorder_features(arr, marr, spacing_zyx, bin_width=bin_width, bin_count=bin_count,
                                        voxel_array_shift=voxel_array_shift, scale=factor, label=label)
            if histogram:
                bins, n_bins = discretise(roi_values(arr, marr, label) * factor, bin_width, bin_count)
                feats.update(histogram_features(bins, n_bins))
        except InputError as err:
            raise InputError(image, err.problem) from None
    settings = {"image": str(image), "mask": str(mask), "label": label, "bin_width": bin_width,
                "bin_count": bin_count, "voxel_array_shift": voxel_array_shift, "scale": factor,
                "adc_unit": None if adc_unit is None else adc_unit.value, "spacing_zyx_mm": list(spacing_zyx)}
    if as_json:
        clean = {k: (v if np.isfinite(v) else None) for k, v in feats.items()}  # undefined -> null
        typer.echo(json.dumps({**clean, "settings": settings}, indent=2))
    else:
        _print(feats, image, mask)
    for w in caught:
        Console(stderr=True).print(f"[yellow]warning:[/] {w.message}", highlight=False)


def _print(feats: dict[str, float], image: Path, mask: Path) -> None:
    table = Table("feature", "value", "IBSI", "pyradiomics", title=f"First-order features: {image.name} in {mask.name}")
    for name, value in feats.items():
        shown = "NaN" if not np.isfinite(value) else f"{value:.6g}"
        table.add_row(name, shown, IBSI_CODES.get(name, ""), PYRADIOMICS_NAMES.get(name, ""))
    Console().print(table)
