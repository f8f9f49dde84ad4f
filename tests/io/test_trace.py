"""Trace (isotropic) diffusion images told from directional ones (``io.dicom._is_trace``): the standard markers,
Siemens (0019,100D), Philips (2001,1004) and GE (0019,10E0) with its gradient, each under its private creator; and
ingestion of classic vendor series that hold directional images beside the trace image at one b-value, where the
DWI volume must be the trace image alone and the directional images kept aside with the reason."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from sarcomri.cohort.manifest import Cohort
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.dicom import _is_trace
from sarcomri.io.ingest import ingest

SIEMENS, PHILIPS, GE_ACQU, GE_PARM = "SIEMENS MR HEADER", "Philips Imaging DD 001", "GEMS_ACQU_01", "GEMS_PARM_01"
OTHER = "ACME PACS 1.0"  # a private creator of no vendor


# --------------------------------------------------------------------------------------------- header builders


def siemens(directionality: str | None, creator: str | None = SIEMENS, block: int = 0x10,
            image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), raw: bool = False) -> pydicom.Dataset:
    """A syngo MR classic header: b-value (0019,xx0C), DiffusionDirectionality (0019,xx0D)."""
    ds = pydicom.Dataset()
    ds.ImageType = list(image_type)
    if creator is not None:
        ds.add_new((0x0019, block), "LO", creator)
    ds.add_new((0x0019, (block << 8) | 0x0C), "IS", "1000")
    if directionality is not None:
        if raw:
            ds.add_new((0x0019, (block << 8) | 0x0D), "OB", directionality.encode() + b" ")
        else:
            ds.add_new((0x0019, (block << 8) | 0x0D), "CS", directionality)
    return ds


def philips(direction: str | None, creator: str | None = PHILIPS, raw: bool = False,
            image_type=("DERIVED", "PRIMARY", "DIFFUSION", "M", "SE")) -> pydicom.Dataset:
    """A Philips classic header: b-value (2001,1003) FL, diffusion direction label (2001,1004) CS."""
    ds = pydicom.Dataset()
    ds.ImageType = list(image_type)
    if creator is not None:
        ds.add_new((0x2001, 0x0010), "LO", creator)
    ds.add_new((0x2001, 0x1003), "FL", 1000.0)
    if direction is not None:
        if raw:
            ds[0x2001, 0x1004] = pydicom.DataElement((0x2001, 0x1004), "UN", direction.encode() + b" ")
        else:
            ds.add_new((0x2001, 0x1004), "CS", direction)
    return ds


def ge(count: str | None, gradient=(0.0, 0.0, 0.0), b: int = 1000, creator: str | None = GE_ACQU,
       raw: bool = False) -> pydicom.Dataset:
    """A GE Signa classic header: b-value (0043,1039), gradient (0019,10BB-BD) DS, direction count (0019,10E0) DS
    (``None``: the element is absent; a ``None`` component of ``gradient``: that element is absent)."""
    ds = pydicom.Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.add_new((0x0043, 0x0010), "LO", GE_PARM)
    ds.add_new((0x0043, 0x1039), "IS", [str(b + 1_000_000_000), "8", "0", "0"])
    if creator is not None:
        ds.add_new((0x0019, 0x0010), "LO", creator)
    values = {0x10BB: gradient[0], 0x10BC: gradient[1], 0x10BD: gradient[2], 0x10E0: count}
    for element, value in values.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else f"{value:g}"
        if raw:
            ds[0x0019, element] = pydicom.DataElement((0x0019, element), "UN", (text + " ").encode())
        else:
            ds.add_new((0x0019, element), "DS", text)
    return ds


# --------------------------------------------------------------------------------------------- standard markers


@pytest.mark.parametrize("image_type, expected", [
    (["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"], True),
    (["DERIVED", "PRIMARY", "DIFFUSION", "TRACE"], True),
    (["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"], False),
    (["ORIGINAL", "PRIMARY", "M", "NORM"], False),
])
def test_image_type(image_type, expected):
    ds = pydicom.Dataset()
    ds.ImageType = image_type
    assert _is_trace(ds) is expected


def test_standard_diffusion_directionality():
    ds = pydicom.Dataset()
    ds.DiffusionDirectionality = "ISOTROPIC"
    assert _is_trace(ds)
    ds.DiffusionDirectionality = "DIRECTIONAL"
    assert not _is_trace(ds)


def test_single_valued_image_type():
    ds = pydicom.Dataset()
    ds.ImageType = "TRACEW"
    assert _is_trace(ds)
    ds = siemens("ISOTROPIC")
    ds.ImageType = "ADC"
    assert not _is_trace(ds)


def test_empty_header_is_not_trace():
    assert not _is_trace(pydicom.Dataset())


def test_a_computed_map_is_never_trace():
    """ProstateX's Siemens ADC map carries (0019,100D) ISOTROPIC: an ADC/eADC/FA map is not a trace image."""
    for value in ("ADC", "EADC", "FA"):
        assert not _is_trace(siemens("ISOTROPIC", image_type=("DERIVED", "PRIMARY", "DIFFUSION", value)))
    assert not _is_trace(philips("I", image_type=("DERIVED", "PRIMARY", "ADC_UNSPECIFIED")))


# --------------------------------------------------------------------------------------------- Siemens


def test_siemens_trace_in_the_original_series():
    assert _is_trace(siemens("ISOTROPIC"))
    assert _is_trace(siemens("ISOTROPIC", raw=True))  # OB bytes b'ISOTROPIC ', as in ProstateX


@pytest.mark.parametrize("directionality", ["DIRECTIONAL", "NONE", None])
def test_siemens_directional_b0_or_unlabelled_is_not_trace(directionality):
    assert not _is_trace(siemens(directionality))


def test_siemens_marker_of_another_creator_is_ignored():
    assert not _is_trace(siemens("ISOTROPIC", creator=OTHER))


def test_siemens_creator_dropped_means_block_0x10():
    assert _is_trace(siemens("ISOTROPIC", creator=None))
    assert not _is_trace(siemens("DIRECTIONAL", creator=None))


def test_siemens_block_found_by_its_creator():
    ds = siemens("ISOTROPIC", block=0x11)
    ds.add_new((0x0019, 0x0010), "LO", OTHER)  # block 0x10 is another creator's
    assert _is_trace(ds)
    ds = siemens(None)  # SIEMENS MR HEADER at 0x10 without the element; another creator's 0x11 says ISOTROPIC
    ds.add_new((0x0019, 0x0011), "LO", OTHER)
    ds.add_new((0x0019, 0x110D), "CS", "ISOTROPIC")
    assert not _is_trace(ds)


# --------------------------------------------------------------------------------------------- Philips


def test_philips_trace():
    assert _is_trace(philips("I"))
    assert _is_trace(philips("I", raw=True))  # UN bytes after an anonymiser
    assert _is_trace(philips("I", image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "M", "SE")))


@pytest.mark.parametrize("direction", ["O", "R", "A", "S", "P", None, ""])
def test_philips_directional_is_not_trace(direction):
    assert not _is_trace(philips(direction))


def test_philips_marker_of_another_creator_is_ignored():
    assert not _is_trace(philips("I", creator=OTHER))
    assert not _is_trace(philips("I", creator="Philips MR Imaging DD 001"))  # the 2005 group's creator


def test_philips_creator_dropped_means_block_0x10():
    assert _is_trace(philips("I", creator=None))
    assert not _is_trace(philips("O", creator=None))


# --------------------------------------------------------------------------------------------- GE


def test_ge_trace():
    assert _is_trace(ge("0"))
    assert _is_trace(ge("0", gradient=(0.0, -0.0, 0.0), b=12000))
    assert _is_trace(ge("0", raw=True))  # UN bytes


@pytest.mark.parametrize("count, gradient, b", [
    ("3", (1.0, 0.0, 0.0), 1000),  # directional
    ("3", (0.0, 0.0, 0.0), 1000),  # directional, gradient zeroed by an anonymiser (dcm2niix issue 542)
    ("0", (0.0, 0.0, 0.0), 0),  # b = 0
    ("0", (0.0, 0.7071, 0.7071), 1000),  # a count of 0 with a gradient: not a trace image
    (None, (0.0, 0.0, 0.0), 1000),  # no direction count (GEIIS PACS strips it, dcm2niix issue 690)
    ("0", (0.0, None, 0.0), 1000),  # a gradient component missing
    ("0", (None, None, None), 1000),  # no gradient at all
])
def test_ge_not_trace(count, gradient, b):
    assert not _is_trace(ge(count, gradient, b))
    assert not _is_trace(ge(count, gradient, b, raw=True))


def test_ge_unreadable_count_is_not_trace():
    assert not _is_trace(ge("x", raw=True))
    assert not _is_trace(ge("nan", raw=True))


def test_ge_without_a_b_value_is_not_trace():
    ds = ge("0")
    del ds[0x0043, 0x1039]
    assert not _is_trace(ds)


def test_ge_marker_of_another_creator_is_ignored():
    assert not _is_trace(ge("0", creator=OTHER))
    assert not _is_trace(ge("0", creator=SIEMENS))


def test_ge_creator_dropped_means_block_0x10():
    assert _is_trace(ge("0", creator=None))
    assert not _is_trace(ge("3", gradient=(0.0, 1.0, 0.0), creator=None))


def test_vendor_groups_do_not_cross():
    """GEMS_ACQU_01 and SIEMENS MR HEADER share group 0019: the Siemens element is not read in GE's block."""
    ds = ge("3", gradient=(1.0, 0.0, 0.0))
    ds.add_new((0x0019, 0x100D), "CS", "ISOTROPIC")  # in GEMS_ACQU_01's block: not Siemens' directionality
    assert not _is_trace(ds)


# --------------------------------------------------------------------------------------------- ingestion

N_SLICES = 3
TRACE_VALUE = 700  # pixel value of the trace image at slice k: TRACE_VALUE + k; directional images: 100 * (1 + i)
DIRECTIONS = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
IMAGES = [(0.0, None), *((1000.0, d) for d in DIRECTIONS), (1000.0, None)]  # b0, 3 directions, the trace


def _philips_style(ds, b, direction, zeroed):
    ds.Manufacturer = "Philips Medical Systems"
    ds.ImageType = ["DERIVED" if direction is None and b else "ORIGINAL", "PRIMARY", "DIFFUSION", "M", "SE"]
    ds.add_new((0x2001, 0x1004), "CS", "O" if direction else "I")
    ds.add_new((0x2005, 0x0010), "LO", "Philips MR Imaging DD 001")
    for element, value in zip((0x10B0, 0x10B1, 0x10B2), direction or (0.0, 0.0, 0.0), strict=True):
        ds.add_new((0x2005, element), "FL", float(value))


def _ge_style(ds, b, direction, zeroed):
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.add_new((0x0019, 0x0010), "LO", GE_ACQU)
    gradient = (0.0, 0.0, 0.0) if zeroed or direction is None else direction
    for element, value in zip((0x10BB, 0x10BC, 0x10BD), gradient, strict=True):
        ds.add_new((0x0019, element), "DS", f"{value:g}")
    ds.add_new((0x0019, 0x10E0), "DS", "3" if direction else "0")


def _siemens_style(ds, b, direction, zeroed):
    ds.Manufacturer = "SIEMENS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.add_new((0x0019, 0x100D), "CS", "DIRECTIONAL" if direction else ("ISOTROPIC" if b else "NONE"))
    if direction:
        ds.add_new((0x0019, 0x100E), "FD", list(direction))


STYLES = {  # vendor: (write_series b_tag, restyle, gradients zeroed on the directional images)
    "philips": ("philips", _philips_style, False),
    "ge": ("ge", _ge_style, False),
    "ge-zeroed-gradient": ("ge", _ge_style, True),
    "siemens-original-series": ("siemens", _siemens_style, False),
}


@pytest.mark.parametrize("vendor", list(STYLES))
def test_directional_images_beside_the_trace_are_kept_aside(vendor, tmp_path, make_series):
    """A classic DWI series with b0, three directional images and the trace image at b = 1000 (each slice): the
    cohort's DWI_b1000 is exactly the trace image, the directional images are kept aside with the reason."""
    b_tag, style, zeroed = STYLES[vendor]
    src = tmp_path / "src"
    paths = make_series(src / "dwi", N_SLICES, description="DWI", series_number=7,
                        b_values=[b for b, _ in IMAGES], b_tag=b_tag)
    for path in paths:
        ds = pydicom.dcmread(path)
        index, k = divmod(int(ds.InstanceNumber) - 1, N_SLICES)
        b, direction = IMAGES[index]
        if 0x00189087 in ds:
            del ds[0x0018, 0x9087]
        style(ds, b, direction, zeroed)
        value = TRACE_VALUE + k if index == len(IMAGES) - 1 else 100 * (1 + index)
        ds.PixelData = np.full((ds.Rows, ds.Columns), value, np.uint16).tobytes()
        ds.save_as(path, enforce_file_format=True)
        assert _is_trace(pydicom.dcmread(path, stop_before_pixels=True)) == (index == len(IMAGES) - 1 or
                                                                             (vendor == "philips" and index == 0))
    report = ingest(src, tmp_path / "out", pseudonymizer=Pseudonymizer.from_key("k"), compute_adc=False)
    cohort = Cohort.load(tmp_path / "out")
    assert set(cohort.sequences) == {"DWI_b0", "DWI_b1000"}
    pid = cohort.patient_ids[0]
    trace = sitk.GetArrayFromImage(cohort.read_image(pid, "DWI_b1000"))
    assert trace.shape[0] == N_SLICES
    assert sorted(np.unique(s).tolist() for s in trace) == [[TRACE_VALUE + k] for k in range(N_SLICES)]
    b0 = sitk.GetArrayFromImage(cohort.read_image(pid, "DWI_b0"))
    assert np.unique(b0).tolist() == [100]
    assert [(u["files"], u["reason"]) for u in report.unmapped] == [
        (3 * N_SLICES, f"diffusion series: {3 * N_SLICES} directional image(s) at b=1000 (the trace image is used)")]
