"""Every b-value rule of :mod:`sarcomri.io.bvalues` (and trace detection, ``io.dicom._is_trace``) checked against
dcm2niix's reading of the same files: the real Siemens study in ../shared/data, the public MR samples of pydicom
and pydicom-data (none of them diffusion-weighted), and one small DWI series per vendor rule that no real file
covers, written with the vendor's tags as the vendor writes them. docs/dicom_bvalues.md is the table of rules,
files, readings and disagreements; each documented disagreement is asserted here as it stands, so a change on
either side (a new dcm2niix, a change in sarcomri) fails until the document is updated.

dcm2niix writes one .nii/.bval/.bvec per series (one b-value and gradient per volume), so each DICOM file is
related to its volume by its pixels: every 2-D slice of every volume written is hashed in a form that does not
depend on dcm2niix's flips and transposes, and each file's stored pixel array is looked up among them (every
synthetic file has its own random pixels; the 164 files of the real study are all distinct).
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.errors import InvalidDicomError
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from sarcomri.io.bvalues import b_value, b_value_from_description
from sarcomri.io.dicom import _is_trace

SIEMENS, GE, PHILIPS = "SIEMENS MR HEADER", "GEMS_PARM_01", "Philips Imaging DD 001"
OTHER = "ACME PACS 1.0"  # a private creator of no vendor


# --------------------------------------------------------------------------------------------- dcm2niix helper


def dcm2niix_executable() -> str:
    """The dcm2niix executable (the virtualenv's first, then PATH, then the pip package's), or skip the test."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("dcm2niix", path=path)
    if exe is None:
        try:
            import dcm2niix

            exe = dcm2niix.bin if Path(dcm2niix.bin).is_file() else None
        except ImportError:
            exe = None
    if exe is None:
        pytest.skip("dcm2niix executable not found (pip install dcm2niix, a dev dependency): b-values not checked")
    return exe


@dataclass(frozen=True)
class Reading:
    """What dcm2niix made of one DICOM file: the b-value and gradient of the volume that holds its pixels.

    ``b`` and ``bvec`` are None when that volume's series got no .bval/.bvec (dcm2niix saw no diffusion, or
    moved the volume to a separate file without them); ``converted`` is False when no output holds the pixels.
    """

    converted: bool
    b: float | None = None
    bvec: tuple[float, float, float] | None = None

    @property
    def isotropic(self) -> bool:
        """dcm2niix's notion of a trace (isotropic) image: a b-value above 0 with a zero gradient vector."""
        return self.b is not None and self.b > 0 and self.bvec is not None and not any(self.bvec)


def _pixel_key(array: np.ndarray) -> str:
    """A hash of a 2-D array that is the same under any of the 8 flips/transposes dcm2niix may apply."""
    a = np.asarray(array).astype(np.int64)
    variants = [np.ascontiguousarray(np.rot90(m, k)) for m in (a, a.T) for k in range(4)]
    best = min((v.shape, v.tobytes()) for v in variants)
    return hashlib.sha1(repr(best[0]).encode() + best[1]).hexdigest()


def run_dcm2niix(folder: Path, out: Path) -> subprocess.CompletedProcess:
    """``dcm2niix -b y -ba n -z n -l o -f %s_%j -o OUT FOLDER``: uncompressed NIfTI, stored integers kept."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [dcm2niix_executable(), "-b", "y", "-ba", "n", "-z", "n", "-l", "o", "-f", "%s_%j", "-o", str(out),
           str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"dcm2niix failed ({done.returncode}): {done.stdout}\n{done.stderr}"
    return done


def dcm2niix_readings(folder: Path, out: Path) -> dict[Path, Reading]:
    """dcm2niix's b-value and gradient for every DICOM image file under ``folder`` (converted into ``out``)."""
    import nibabel as nib

    run_dcm2niix(folder, out)
    index: dict[str, list[Reading]] = {}
    for nii in sorted(out.glob("*.nii")):
        data = np.asarray(nib.load(nii).dataobj.get_unscaled())
        data = data.reshape(data.shape[:3] + (-1,))
        bval, bvec = nii.with_suffix(".bval"), nii.with_suffix(".bvec")
        bvals = [float(v) for v in bval.read_text().split()] if bval.is_file() else None
        bvecs = np.loadtxt(bvec, ndmin=2) if bvec.is_file() else None
        for t in range(data.shape[3]):
            reading = Reading(True, None if bvals is None else bvals[t],
                              None if bvecs is None else tuple(float(v) for v in bvecs[:, t]))
            for z in range(data.shape[2]):
                index.setdefault(_pixel_key(data[:, :, z, t]), []).append(reading)
    readings = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            continue
        if "PixelData" not in ds:
            continue
        found = index.get(_pixel_key(ds.pixel_array), [])
        with_b = [r for r in found if r.b is not None]  # a volume also written without .bval (Philips _ADC copy)
        assert len({r.b for r in with_b}) <= 1, f"{path}: its pixels are in volumes of different b-values {found}"
        readings[path] = with_b[0] if with_b else (found[0] if found else Reading(False))
    return readings


# --------------------------------------------------------------------------------------------- the real study


def test_prostatex_every_file_agrees(shared_data, tmp_path):
    """Siemens Skyra, syngo MR D11: b in (0019,100C) as raw OB bytes (b'800 '), all 164 files of the study."""
    study = shared_data / "dicom" / "prostatex-0000"
    readings = dcm2niix_readings(study, tmp_path / "nii")
    assert len(readings) == 164 and all(r.converted for r in readings.values())
    per_series: dict[str, Counter] = {}
    for path, reading in readings.items():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert b_value(ds) == reading.b, f"{path}: sarcomri {b_value(ds)}, dcm2niix {reading.b}"
        per_series.setdefault(str(ds.SeriesDescription), Counter())[reading.b] += 1
        if reading.b:
            image_type = {str(v) for v in ds.ImageType}
            # the trace images are trace for both; dcm2niix also gives the scanner's ADC map b=800 with a zero
            # gradient (what the header holds), sarcomri does not call an ADC map a trace image (documented)
            assert _is_trace(ds) == ("TRACEW" in image_type), path
            assert reading.isotropic, path
    assert per_series == {
        "t2_tse_sag": {None: 19}, "t2_tse_tra": {None: 19}, "t2_tse_cor": {None: 15},
        "ep2d_diff_tra_DYNDIST": {50.0: 19, 400.0: 19, 800.0: 19},
        "ep2d_diff_tra_DYNDIST_ADC": {800.0: 19},
        "ep2d_diff_tra_DYNDISTCALC_BVAL": {1000.0: 19},
        "tfl_3d PD ref_tra_1.5x1.5_t3": {None: 16},
    }


def test_qin_ge_adc_agrees(shared_data, tmp_path):
    """GE 3T ADC map: (0043,1039) = 1400 (unflagged) on all 20 slices, the same for both readers."""
    folder = shared_data / "dicom" / "qin-prostate-001" / "ADC"
    readings = dcm2niix_readings(folder, tmp_path / "nii")
    assert len(readings) == 20
    for path, reading in readings.items():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert b_value(ds) == reading.b == 1400.0, path
        assert reading.bvec is None and not _is_trace(ds)  # an ADC map: dcm2niix writes no .bvec


# --------------------------------------------------------------------------------------------- public samples

#: The MR files among pydicom's own test files and pydicom-data (MIT): none carries a b-value or is diffusion-weighted.
PUBLIC_MR = ["MR_small.dcm", "MR2_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "emri_small.dcm"]


def _public_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    try:
        path = get_testdata_file(name)
    except Exception:  # a download attempt when pydicom-data is missing
        path = None
    if path is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data)")
    return Path(path)


@pytest.mark.parametrize("name", PUBLIC_MR)
def test_public_mr_samples_have_no_b_value(name, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(_public_file(name), src / name)
    run_dcm2niix(src, tmp_path / "nii")
    assert list((tmp_path / "nii").glob("*.nii")), "dcm2niix converted nothing"
    assert not list((tmp_path / "nii").glob("*.bval"))
    assert b_value(pydicom.dcmread(src / name, stop_before_pixels=True)) is None


# --------------------------------------------------------------------------------------------- synthetic rules

Style = Callable[[pydicom.Dataset, float, "tuple | None"], None]
X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def _drop(ds: pydicom.Dataset, *tags) -> None:
    for tag in tags:
        if tag in ds:
            del ds[tag]


def siemens(creator: str | None = SIEMENS, block: int = 0x10, tag: bool = True, derived: bool = True) -> Style:
    """syngo MR classic: b in (0019,xx0C) IS, DiffusionDirectionality (0019,xx0D), gradient (0019,xx0E) FD.

    A trace series (``derived``) is DERIVED\\PRIMARY\\DIFFUSION\\TRACEW for every b-value (as ProstateX's);
    the acquired series is ORIGINAL\\PRIMARY\\DIFFUSION\\NONE with a gradient for each directional image."""
    def style(ds, b, direction):
        _drop(ds, (0x0018, 0x9087), (0x0019, 0x0010), (0x0019, 0x100C))
        ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = "SIEMENS", "Skyra", "syngo MR D11"
        trace = derived and direction is None
        ds.ImageType = ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"] if trace else \
            ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
        ds.SequenceName = f"*ep_b{int(b)}" + ("t" if trace else "")
        if block != 0x10:
            ds.add_new((0x0019, 0x0010), "LO", OTHER)
        if creator is not None:
            ds.add_new((0x0019, block), "LO", creator)
        if tag:
            base = block << 8
            ds.add_new((0x0019, base | 0x0C), "IS", str(int(b)))
            ds.add_new((0x0019, base | 0x0D), "CS", "DIRECTIONAL" if direction else ("ISOTROPIC" if b else "NONE"))
            if direction:
                ds.add_new((0x0019, base | 0x0E), "FD", list(direction))
    return style


def ge(creator: str | None = GE, flag: bool = True, standard: bool = False, directions: bool = True,
       private_offset: int = 0, zeroed_gradient: bool = False) -> Style:
    """Signa classic: b in (0043,1039) IS ``b\\8\\0\\0`` with 10^9 added on multi-b series (the flag, dcm2niix
    issue 602), gradient in (0019,10BB/BC/BD) DS, number of directions (0019,10E0) DS (0: isotropic);
    ``standard``: also (0018,9087) without the flag (DV26 and later); ``zeroed_gradient``: the gradient of every
    image zeroed, the direction count kept (what some anonymisers do, dcm2niix issue 542)."""
    def style(ds, b, direction):
        _drop(ds, (0x0018, 0x9087), (0x0043, 0x0010), (0x0043, 0x1039))
        ds.Manufacturer, ds.ManufacturerModelName = "GE MEDICAL SYSTEMS", "DISCOVERY MR750"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        if creator is not None:
            ds.add_new((0x0043, 0x0010), "LO", creator)
        stored = int(b) + (1_000_000_000 if flag else 0) + private_offset
        ds.add_new((0x0043, 0x1039), "IS", [str(stored), "8", "0", "0"])
        ds.add_new((0x0019, 0x0010), "LO", "GEMS_ACQU_01")
        gradient = (0.0, 0.0, 0.0) if zeroed_gradient or direction is None else direction
        for element, value in zip((0x10BB, 0x10BC, 0x10BD), gradient, strict=True):
            ds.add_new((0x0019, element), "DS", f"{value:g}")
        if directions:
            ds.add_new((0x0019, 0x10E0), "DS", "3" if direction else "0")
        if standard:
            ds.add_new((0x0018, 0x9087), "FD", float(b))
    return style


def philips(creator: str | None = PHILIPS, manufacturer: str | None = "Philips Medical Systems",
            raw: bool = False) -> Style:
    """Achieva/Ingenia classic: b in (2001,1003) FL, direction label (2001,1004) CS (``I`` isotropic, ``O``
    oblique/directional), gradient (2005,10B0/B1/B2) FL; ``raw``: (2001,1003) as UN bytes (little-endian float)."""
    def style(ds, b, direction):
        _drop(ds, (0x0018, 0x9087), (0x2001, 0x0010), (0x2001, 0x1003))
        if manufacturer is None:
            _drop(ds, (0x0008, 0x0070))
        else:
            ds.Manufacturer = manufacturer
        ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "M", "SE"]
        if creator is not None:
            ds.add_new((0x2001, 0x0010), "LO", creator)
        if raw:
            ds[0x2001, 0x1003] = pydicom.DataElement((0x2001, 0x1003), "UN", struct.pack("<f", float(b)))
        else:
            ds.add_new((0x2001, 0x1003), "FL", float(b))
        ds.add_new((0x2001, 0x1004), "CS", "O" if direction else "I")
        ds.add_new((0x2005, 0x0010), "LO", "Philips MR Imaging DD 001")
        for element, value in zip((0x10B0, 0x10B1, 0x10B2), direction or (0.0, 0.0, 0.0), strict=True):
            ds.add_new((0x2005, element), "FL", float(value))
    return style


def standard(manufacturer: str | None = "CANON_MEC", b_tag: bool = True) -> Style:
    """(0018,9087) DiffusionBValue FD on a classic image (Canon/Toshiba, recent Siemens/Philips, sarcomri's own
    synthetic writer); ``b_tag=False``: no b-value anywhere (only the series description names one)."""
    def style(ds, b, direction):
        _drop(ds, (0x0018, 0x9087))
        if manufacturer is None:
            _drop(ds, (0x0008, 0x0070))
        else:
            ds.Manufacturer = manufacturer
        ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
        if b_tag:
            ds.add_new((0x0018, 0x9087), "FD", float(b))
    return style


def implicit(inner: Style) -> Style:
    """The same tags written in Implicit VR Little Endian (what many PACS and anonymisers send)."""
    def style(ds, b, direction):
        inner(ds, b, direction)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return style


TRACE3 = [(0.0, None), (500.0, None), (1000.0, None)]  # b = 0, 500, 1000: one trace image per slice each
DTI = [(0.0, None), (1000.0, X), (1000.0, Y), (1000.0, Z)]  # b = 0 and three directions at b = 1000
B3 = [0.0, 500.0, 1000.0]
NONE3 = [None, None, None]
ISO3 = [False, True, True]  # dcm2niix: b = 0 is not isotropic, the trace images at b > 0 are
DCM2NIIX_ZERO = ("dcm2niix writes b=0 for every image whose ImageType says DIFFUSION and no b-value tag it reads "
                 "gives one (any vendor); sarcomri reports none: the b-value is unknown, not 0 (the series "
                 "description, then the aside list)")
OTHER_CREATOR = ("the element belongs to whoever reserved the block (PS3.5 7.8.1): here another creator, so it is "
                 "not a b-value; dcm2niix reads the fixed tag number whoever reserved it")
GE_TRACE3 = [False, True, True]  # sarcomri: (0019,10E0) = 0 with a zero gradient at b > 0; b = 0 is not trace
PHILIPS_TRACE3 = [True] * 3  # sarcomri: (2001,1004) = I on every image, b = 0 included (not compared: b = 0)
TRACE_MOVED = ("dcm2niix moves the trace volume of a directional series out of the .bval (into a copy without "
               ".bval/.bvec, for FSL); sarcomri keeps it: it is the image it uses")
STANDARD_TRACE = ("nothing in these headers says trace (no TRACEW, no (0018,9075) ISOTROPIC, no vendor label): "
                  "dcm2niix infers it from b > 0 without a gradient; sarcomri needs a marker (a zero gradient alone "
                  "is not one: see ge-zeroed-gradient)")


@dataclass
class Case:
    """One synthetic DWI series (3 slices per image of ``images``) and what each reader must make of it.

    ``why`` explains a b-value disagreement (``ours`` != ``theirs``), ``trace_why`` a disagreement on trace
    images (sarcomri's ``_is_trace`` against dcm2niix's zero gradient at b > 0, compared where both readers
    have a b-value above 0 and dcm2niix wrote a gradient). Both are empty exactly when the readers agree;
    docs/dicom_bvalues.md lists them.
    """

    id: str
    images: list  # (b, gradient direction or None) per image position
    style: Style
    ours: list  # sarcomri's b_value per image
    theirs: list | None = None  # dcm2niix's b per image (None: no .bval); default: the same as ``ours``
    trace: list | None = None  # sarcomri's _is_trace per image (default: all False)
    isotropic: list | None = None  # dcm2niix's b > 0 with a zero vector per image (default: all False)
    why: str = field(default="", repr=False)
    trace_why: str = field(default="", repr=False)
    description: str = "ep2d_diff_tra"


CASES = [
    # --- Siemens (0019,100C) ---------------------------------------------------------------------------------
    Case("siemens-trace", TRACE3, siemens(), B3, trace=[True] * 3, isotropic=ISO3),
    Case("siemens-directional", DTI + [(1000.0, None)], siemens(derived=False), [0.0] + [1000.0] * 4,
         trace=[False] * 4 + [True], isotropic=[False] * 4 + [True]),  # (0019,100D) ISOTROPIC in an ORIGINAL series
    Case("siemens-implicit-vr", TRACE3, implicit(siemens()), B3, trace=[True] * 3, isotropic=ISO3),
    Case("siemens-no-creator", TRACE3, siemens(creator=None), B3, trace=[True] * 3, isotropic=ISO3),
    Case("siemens-other-creator", TRACE3, siemens(creator=OTHER), NONE3, B3, trace=[True] * 3, isotropic=ISO3,
         why=OTHER_CREATOR),
    Case("siemens-block-0x11", TRACE3, siemens(block=0x11), B3, NONE3, trace=[True] * 3,
         why="(0019,0010) is another creator's and SIEMENS MR HEADER reserved block 0x11, so the b-value is "
             "(0019,110C) (PS3.5 7.8.1); dcm2niix looks at (0019,100C) only and finds none"),
    Case("siemens-no-b-tag", TRACE3, siemens(tag=False, derived=False), NONE3, [0.0] * 3, why=DCM2NIIX_ZERO),
    # --- GE (0043,1039) --------------------------------------------------------------------------------------
    Case("ge-flagged", TRACE3, ge(), B3, trace=GE_TRACE3, isotropic=ISO3),
    Case("ge-unflagged", TRACE3, ge(flag=False), B3, trace=GE_TRACE3, isotropic=ISO3),
    Case("ge-flagged-b12000", [(0.0, None), (1000.0, None), (12000.0, None)], ge(), [0.0, 1000.0, 12000.0],
         trace=GE_TRACE3, isotropic=ISO3),
    Case("ge-with-standard-tag", TRACE3, ge(standard=True), B3, trace=GE_TRACE3, isotropic=ISO3),
    Case("ge-standard-and-private-differ", TRACE3, ge(standard=True, flag=False, private_offset=7), B3,
         [7.0, 507.0, 1007.0], trace=GE_TRACE3,
         why="precedence only (no scanner writes two different values): sarcomri takes the standard "
             "(0018,9087), dcm2niix the vendor's private tag"),
    Case("ge-directional", DTI, ge(flag=False), [0.0, 1000.0, 1000.0, 1000.0]),
    Case("ge-directional-and-trace", DTI + [(1000.0, None)], ge(flag=False), [0.0] + [1000.0] * 4,
         [0.0] + [1000.0] * 3 + [None], trace=[False] * 4 + [True], why=TRACE_MOVED),
    Case("ge-zeroed-gradient", DTI, ge(flag=False, zeroed_gradient=True), [0.0, 1000.0, 1000.0, 1000.0],
         isotropic=[False, True, True, True],
         trace_why="the gradient of the directional images was zeroed (some anonymisers, dcm2niix issue 542) but "
                   "(0019,10E0) still counts 3 directions: sarcomri keeps them directional, dcm2niix calls every "
                   "b > 0 image with a zero gradient isotropic"),
    Case("ge-implicit-vr", TRACE3, implicit(ge()), B3, trace=GE_TRACE3, isotropic=ISO3),
    Case("ge-no-creator", TRACE3, ge(creator=None), B3, trace=GE_TRACE3, isotropic=ISO3),
    Case("ge-other-creator", TRACE3, ge(creator=OTHER), NONE3, B3, isotropic=ISO3, why=OTHER_CREATOR),
    Case("ge-no-direction-count", TRACE3, ge(directions=False), B3, [0.0] * 3,
         why="without (0019,10E0) dcm2niix takes a GE series without gradients for derived and writes b=0 for "
             "every volume (dcm2niix issue 690: the tag stripped by GEIIS PACS); the b-value tag is there"),
    # --- Philips (2001,1003) ---------------------------------------------------------------------------------
    Case("philips-trace", TRACE3, philips(), B3, trace=PHILIPS_TRACE3, isotropic=ISO3),
    Case("philips-directional-and-trace", DTI + [(1000.0, None)], philips(), [0.0] + [1000.0] * 4,
         [0.0] + [1000.0] * 3 + [None], trace=[True, False, False, False, True], why=TRACE_MOVED),
    Case("philips-implicit-vr", TRACE3, implicit(philips()), B3, trace=PHILIPS_TRACE3, isotropic=ISO3),
    Case("philips-raw-bytes", TRACE3, philips(creator=None, raw=True), B3, trace=PHILIPS_TRACE3, isotropic=ISO3),
    Case("philips-no-manufacturer", TRACE3, philips(manufacturer=None), B3, trace=PHILIPS_TRACE3, isotropic=ISO3),
    Case("philips-no-creator-no-manufacturer", TRACE3, philips(creator=None, manufacturer=None), B3, [0.0] * 3,
         trace=PHILIPS_TRACE3,
         why="nothing names the vendor: sarcomri trusts (2001,1003) as it trusts any private tag whose creator "
             "was dropped; dcm2niix reads it only for Philips (Manufacturer or the Philips creator) and writes "
             "its b=0 for DIFFUSION images"),
    Case("philips-other-creator", TRACE3, philips(creator=OTHER), NONE3, B3, isotropic=ISO3, why=OTHER_CREATOR),
    # --- the standard tag (0018,9087) on classic images ------------------------------------------------------
    Case("standard-canon", TRACE3, standard(), B3, isotropic=ISO3, trace_why=STANDARD_TRACE),
    Case("standard-siemens", TRACE3, standard("SIEMENS"), B3, isotropic=ISO3, trace_why=STANDARD_TRACE),
    Case("standard-no-manufacturer", TRACE3, standard(None), B3, isotropic=ISO3, trace_why=STANDARD_TRACE),
    Case("description-only", [(0.0, None), (800.0, None)], standard("TEST", b_tag=False), [None, None], [0.0, 0.0],
         description="DWI b800",
         why=DCM2NIIX_ZERO + "; sarcomri's series planning then takes b=800 from the description for the whole "
             "series (b_value_from_description)"),
]


def _unique_pixels(rows: int, columns: int):
    rng = np.random.default_rng(7)
    return lambda k, b: rng.integers(1, 4000, size=(rows, columns))


def write_case(case: Case, folder: Path, make_series, n_slices: int = 3) -> dict[Path, int]:
    """The case's series written by the project's test writer and restyled per vendor: file -> image index."""
    paths = make_series(folder, n_slices, b_values=[b for b, _ in case.images], b_tag="standard",
                        values=_unique_pixels(8, 6), description=case.description, series_number=5)
    out = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        index = (int(ds.InstanceNumber) - 1) // n_slices
        b, direction = case.images[index]
        case.style(ds, b, direction)
        ds.save_as(path, enforce_file_format=True)
        out[path] = index
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vendor_rule_against_dcm2niix(case, tmp_path, make_series):
    files = write_case(case, tmp_path / "in", make_series)
    readings = dcm2niix_readings(tmp_path / "in", tmp_path / "nii")
    theirs = case.theirs if case.theirs is not None else case.ours
    trace_expected = case.trace or [False] * len(case.images)
    isotropic_expected = case.isotropic or [False] * len(case.images)
    got = {"ours": [], "theirs": [], "trace": [], "isotropic": []}
    with_gradient = set()  # the images whose volume dcm2niix wrote with a .bvec
    for path, index in sorted(files.items()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        reading = readings[path]
        assert reading.converted, f"{path.name}: dcm2niix wrote no volume holding it"
        got["ours"].append((index, b_value(ds)))
        got["theirs"].append((index, reading.b))
        got["trace"].append((index, _is_trace(ds)))
        got["isotropic"].append((index, reading.isotropic))
        if reading.bvec is not None:
            with_gradient.add(index)
    theirs_b = dict(got["theirs"])
    trace = dict(got["trace"])
    isotropic = dict(got["isotropic"])
    for key, expected in (("ours", case.ours), ("theirs", theirs), ("trace", trace_expected),
                          ("isotropic", isotropic_expected)):
        assert sorted(set(got[key])) == sorted(set(enumerate(expected))), f"{case.id}: {key}"
    assert (case.ours == theirs) == (not case.why), f"{case.id}: a b-value disagreement needs its reason"
    both = [i for i, b in enumerate(case.ours) if b and theirs_b[i] and i in with_gradient]
    trace_agree = all(trace[i] == isotropic[i] for i in both)
    assert trace_agree == (not case.trace_why), f"{case.id}: a trace disagreement needs its reason"


def test_description_rule_names_the_single_b_value():
    assert b_value_from_description("DWI b800") == 800.0  # the description-only case above, at series level


def test_implicit_vr_cases_are_written_implicit(tmp_path, make_series):
    files = write_case(next(c for c in CASES if c.id == "philips-implicit-vr"), tmp_path / "in", make_series)
    ds = pydicom.dcmread(next(iter(files)), stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian and ds.original_encoding == (True, True)


def test_standard_tag_on_a_real_toshiba_header(tmp_path):
    """(0018,9087) added to copies of a real classic MR file (pydicom's MR_small.dcm, TOSHIBA_MEC, 64 x 64)."""
    real = pydicom.dcmread(_public_file("MR_small.dcm"))
    rng = np.random.default_rng(3)
    src, series_uid = tmp_path / "in", generate_uid()
    src.mkdir()
    normal = np.cross(np.asarray(real.ImageOrientationPatient[:3], float),
                      np.asarray(real.ImageOrientationPatient[3:], float))
    expected = {}
    for i, b in enumerate([0.0, 0.0, 400.0, 400.0, 900.0, 900.0]):
        ds = copy.deepcopy(real)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber, ds.SeriesDescription = i + 1, "DWI"
        position = np.asarray(real.ImagePositionPatient, float) + (i % 2) * float(real.SliceThickness) * normal
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.add_new((0x0018, 0x9087), "FD", b)
        dtype = np.int16 if real.PixelRepresentation else np.uint16
        ds.PixelData = rng.integers(1, 4000, size=(real.Rows, real.Columns)).astype(dtype).tobytes()
        ds.save_as(src / f"IM{i}.dcm", enforce_file_format=True)
        expected[src / f"IM{i}.dcm"] = b
    readings = dcm2niix_readings(src, tmp_path / "nii")
    for path, b in expected.items():
        assert b_value(pydicom.dcmread(path, stop_before_pixels=True)) == readings[path].b == b, path


# --------------------------------------------------------------------------------------------- the fix


def test_block_found_by_its_creator():
    """PS3.5 7.8.1: SIEMENS MR HEADER may reserve any block; its b-value is then (0019,xx0C)."""
    ds = pydicom.Dataset()
    ds.add_new((0x0019, 0x0010), "LO", OTHER)
    ds.add_new((0x0019, 0x100C), "IS", "50")  # the other creator's element, not a b-value
    ds.add_new((0x0019, 0x0011), "LO", SIEMENS)
    ds.add_new((0x0019, 0x110C), "IS", "800")
    assert b_value(ds) == 800.0
    ds = pydicom.Dataset()
    ds.add_new((0x2001, 0x0010), "LO", "Philips Imaging DD 002")
    ds.add_new((0x2001, 0x0012), "LO", PHILIPS + " ")
    ds.add_new((0x2001, 0x1203), "FL", 600.0)
    assert b_value(ds) == 600.0


def test_block_of_the_creator_without_the_element_gives_none():
    ds = pydicom.Dataset()
    ds.add_new((0x0043, 0x0011), "LO", GE)  # reserved at 0x11, element absent
    ds.add_new((0x0043, 0x1039), "IS", ["1000", "8", "0", "0"])  # no creator at 0x10: would be assumed GE's
    assert b_value(ds) is None


def test_missing_creator_still_means_block_0x10():
    ds = pydicom.Dataset()
    ds.add_new((0x0019, 0x0011), "LO", OTHER)  # another creator elsewhere does not matter
    ds.add_new((0x0019, 0x100C), "IS", "400")
    assert b_value(ds) == 400.0
