"""Enhanced (multi-frame) MR ingested like classic series (sarcomri.io.multiframe).

Real public data: emri_small.dcm of pydicom-data (MIT), a 10-frame 64x64 Enhanced MR Image Storage object (a
Philips T1TFE head scan, de-identified and cut down by gdcmanon) and its RLE, big-endian, JPEG 2000 and
JPEG-LS encodings. Its functional groups were stripped when it was made small, so the tests check that it is
kept aside as it is, and read it after adding functional groups of known geometry to a copy.

Synthetic data: a synthetic cohort written as classic DICOM (sarcomri.synth.dicom.write_dicom), each series
converted to one multi-frame file (highdicom's legacy converter; the DWI one then made an Enhanced MR with
per-frame MRDiffusionSequence and directional frames beside the trace frames); both folders must ingest to
the same cohort. Nothing here needs ../shared/data.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder
from pydicom.uid import EnhancedMRImageStorage, generate_uid

from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.io.deid import Pseudonymizer
from sarcomri.io.dicomseg import image_geometry
from sarcomri.io.ingest import ingest
from sarcomri.io.multiframe import rescaled_dtype

EMRI = "emri_small.dcm"
ENCODINGS = ["emri_small_RLE.dcm", "emri_small_big_endian.dcm", "emri_small_jpeg_2k_lossless.dcm",
             "emri_small_jpeg_ls_lossless.dcm"]
SLICE_OF_FRAME = [3, 0, 7, 1, 9, 2, 5, 4, 8, 6]  # frames stored out of slice order
ORIGIN = np.array([-20.0, 10.0, 5.0])
PIXEL_SPACING = [0.9, 0.8]  # row spacing, column spacing
GAP = 1.2  # the file's SpacingBetweenSlices
FOLDER = "Doe_Jane_1960"  # a source folder named after the patient: messages must not show it


def _item(**attributes) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _oblique() -> tuple[np.ndarray, np.ndarray]:
    """Row and column cosines of a tilted, mostly axial plane (written with 6 decimals, as scanners do)."""
    row = np.array([0.9, 0.1, 0.0])
    row /= np.linalg.norm(row)
    col = np.array([-0.1, 0.9, -0.3])
    col -= (col @ row) * row
    col /= np.linalg.norm(col)
    return np.round(row, 6), np.round(col, 6)


def add_geometry(ds: Dataset, slope: float = 1.0, intercept: float = 0.0) -> Dataset:
    """Give emri_small the functional groups it lacks: one oblique stack of 10 frames stored out of order."""
    row, col = _oblique()
    normal = np.cross(row, col)
    shared = Dataset()
    shared.PlaneOrientationSequence = [_item(ImageOrientationPatient=[float(v) for v in (*row, *col)])]
    shared.PixelMeasuresSequence = [_item(PixelSpacing=PIXEL_SPACING, SliceThickness=GAP)]
    shared.PixelValueTransformationSequence = [_item(RescaleSlope=slope, RescaleIntercept=intercept,
                                                     RescaleType="US")]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for k in range(int(ds.NumberOfFrames)):
        position = ORIGIN + SLICE_OF_FRAME[k] * GAP * normal
        per_frame.append(_item(
            PlanePositionSequence=[_item(ImagePositionPatient=[round(float(v), 4) for v in position])],
            FrameContentSequence=[_item(StackID="1", InStackPositionNumber=SLICE_OF_FRAME[k] + 1)]))
    ds.PerFrameFunctionalGroupsSequence = per_frame
    return ds


def emri_copy(folder: Path, name: str = EMRI, geometry: bool = True, edit=None, **rescale) -> Path:
    """A copy of a pydicom-data file in ``folder`` with a PatientID and a SeriesDescription the sequence map
    names (T1 + plane), with functional groups added unless ``geometry`` is False; ``edit(ds)`` changes more."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.PatientID, ds.PatientName, ds.SeriesDescription = "EMRI-0001", "Doe^Jane", "T1TFE"
    if geometry:
        add_geometry(ds, **rescale)
    if edit is not None:
        edit(ds)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "emri.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # writing big endian is deprecated in pydicom 3
        ds.save_as(path)
    return path


def _ingest(src: Path, out: Path, **kwargs):
    kwargs.setdefault("pseudonymizer", Pseudonymizer.from_key("k"))
    report = ingest(src, out, **kwargs)
    return report, Cohort.load(out)


def _only_volume(cohort: Cohort) -> sitk.Image:
    assert len(cohort.series) == 1
    row = cohort.series.iloc[0]
    return cohort.read_image(row.patient_id, row.sequence)


def expected_from_groups(path: Path) -> dict:
    """Size, spacing, origin, direction and voxels of the file computed from its functional groups here, with
    plain numpy, independently of sarcomri."""
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    row_spacing, col_spacing = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    transform = shared.PixelValueTransformationSequence[0]
    ipp = np.array([f.PlanePositionSequence[0].ImagePositionPatient for f in ds.PerFrameFunctionalGroupsSequence],
                   float)
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(ipp @ normal)
    voxels = ds.pixel_array[order] * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
    return {"size": (int(ds.Columns), int(ds.Rows), int(ds.NumberOfFrames)),
            "spacing": (col_spacing, row_spacing, np.linalg.norm(ipp[order[-1]] - ipp[order[0]]) / (len(ipp) - 1)),
            "origin": ipp[order[0]], "direction": np.column_stack([iop[:3], iop[3:], normal]).ravel(),
            "voxels": voxels}


# ------------------------------------------------------------------------------------------ emri_small (real data)
def test_emri_small_as_published_is_kept_aside_for_want_of_geometry(tmp_path):
    emri_copy(tmp_path / "src", geometry=False)
    report, cohort = _ingest(tmp_path / "src", tmp_path / "out")
    assert cohort.series.empty
    [aside] = report.unmapped
    assert aside["series_number"] == 301 and aside["files"] == 1
    assert "multi-frame images: no functional groups" in aside["reason"] and "unknown" in aside["reason"]


@pytest.mark.parametrize("rescale", [{}, {"slope": 2.5, "intercept": -10.0}], ids=["stored", "rescaled"])
def test_emri_small_volume_matches_its_functional_groups(tmp_path, rescale):
    path = emri_copy(tmp_path / "src", **rescale)
    report, cohort = _ingest(tmp_path / "src", tmp_path / "out")
    assert report.unmapped == [] and list(cohort.series.sequence) == ["T1axi"]
    image = _only_volume(cohort)
    want = expected_from_groups(path)
    assert image.GetSize() == want["size"]
    np.testing.assert_allclose(image.GetSpacing(), want["spacing"], atol=1e-6)
    assert abs(image.GetSpacing()[2] - GAP) < 1e-3
    np.testing.assert_allclose(image.GetOrigin(), want["origin"], atol=1e-6)
    np.testing.assert_allclose(image.GetDirection(), want["direction"], atol=1e-5)
    array = sitk.GetArrayFromImage(image)
    np.testing.assert_array_equal(array, want["voxels"])
    assert array.dtype == (np.uint16 if not rescale else np.float64)  # as SimpleITK reads a classic series
    # highdicom's own reading of the file, put on our grid by permutations and flips only, agrees voxel for voxel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = hd.imread(path).get_volume().match_geometry(image_geometry(image), tol=1e-3)
    np.testing.assert_array_equal(volume.array, array)


@pytest.fixture(scope="module")
def emri_reference(tmp_path_factory) -> np.ndarray:
    root = tmp_path_factory.mktemp("emri")
    emri_copy(root / "src")
    _, cohort = _ingest(root / "src", root / "out")
    return _only_volume(cohort)


@pytest.mark.parametrize("name", ENCODINGS)
def test_compressed_and_big_endian_encodings_give_the_same_volume(tmp_path, name, emri_reference):
    path = emri_copy(tmp_path / "src", name)
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    report, cohort = _ingest(tmp_path / "src", tmp_path / "out")
    if not get_decoder(syntax).is_available:  # where a decoder is missing, a clear reason instead
        assert cohort.series.empty and "no installed decoder reads it" in report.unmapped[0]["reason"]
        return
    image = _only_volume(cohort)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(emri_reference))
    assert sitk.GetArrayViewFromImage(image).dtype == sitk.GetArrayViewFromImage(emri_reference).dtype
    for get in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(image, get)() == getattr(emri_reference, get)()


@pytest.mark.parametrize("syntax", [pydicom.uid.HTJ2KLossless, pydicom.uid.JPEGLosslessSV1], ids=["htj2k", "sv1"])
def test_a_transfer_syntax_without_installed_decoder_is_kept_aside(tmp_path, emri_reference, syntax, monkeypatch):
    # the JPEG 2000 file relabelled: High-Throughput JPEG 2000 decoders read its codestream (pydicom decodes HTJ2K
    # only through pylibjpeg-openjpeg); JPEG Lossless SV1 needs pylibjpeg-libjpeg or gdcm, and cannot read it
    def relabel(ds):
        ds.file_meta.TransferSyntaxUID = syntax

    emri_copy(tmp_path / "src", "emri_small_jpeg_2k_lossless.dcm", edit=relabel)
    if get_decoder(syntax).is_available:
        if syntax != pydicom.uid.HTJ2KLossless:  # a machine without the decoder (the relabelled file is damaged)
            import sarcomri.io.multiframe as multiframe

            installed = get_decoder(syntax)
            missing = type("Missing", (), {"is_available": False, "available_plugins": (), "missing_dependencies": [
                "pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1"]})()
            monkeypatch.setattr(multiframe, "get_decoder", lambda uid: missing if uid == syntax else installed)
        else:
            _, cohort = _ingest(tmp_path / "src", tmp_path / "out")
            np.testing.assert_array_equal(sitk.GetArrayFromImage(_only_volume(cohort)),
                                          sitk.GetArrayFromImage(emri_reference))
            return
    report, cohort = _ingest(tmp_path / "src", tmp_path / "out")
    assert cohort.series.empty
    [aside] = report.unmapped
    assert aside["reason"].startswith(f"multi-frame images: pixel data compressed as {syntax.name}, and no "
                                      "installed decoder reads it (install one of: ")
    assert "pylibjpeg>=2.0 and pylibjpeg-" in aside["reason"]


# ------------------------------------------------------------------------------------------ bad input
def _rotate_frame(k: int):
    def edit(ds):
        row, col = _oblique()
        ds.PerFrameFunctionalGroupsSequence[k].PlaneOrientationSequence = [
            _item(ImageOrientationPatient=[float(v) for v in (*col, *-row)])]

    return edit


def _drop_position(k: int):
    def edit(ds):
        del ds.PerFrameFunctionalGroupsSequence[k].PlanePositionSequence

    return edit


def _two_time_points(ds):
    """Frames 5-9 repeat the positions of frames 0-4 at a second temporal position (a dynamic series)."""
    row, col = _oblique()
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        position = ORIGIN + (k % 5) * GAP * np.cross(row, col)
        item.PlanePositionSequence[0].ImagePositionPatient = [round(float(v), 4) for v in position]
        item.FrameContentSequence[0].TemporalPositionIndex = 1 + k // 5


def _several_stacks(ds):
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item.FrameContentSequence[0].StackID = "1" if k < 5 else "2"


@pytest.mark.parametrize("edit, reason", [
    (_rotate_frame(4), "multi-frame images: frames in 2 orientations (several stacks, e.g. a localiser), not one "
                       "3D volume"),
    (_drop_position(3), "multi-frame images: frame 4 has no PlanePositionSequence (ImagePositionPatient): the "
                        "frames' geometry is unknown"),
    (_two_time_points, "multi-frame images: 10 frames at 5 positions: several volumes (2 temporal positions), not "
                       "one 3D volume"),
    (_several_stacks, "multi-frame images: frames in 2 stacks (StackID 1, 2), not one 3D volume"),
], ids=["orientation", "no-position", "time-points", "stacks"])
def test_frames_that_are_not_one_volume_are_kept_aside_with_the_reason(tmp_path, edit, reason):
    emri_copy(tmp_path / "src", edit=edit)
    report, cohort = _ingest(tmp_path / "src", tmp_path / "out")
    assert cohort.series.empty
    assert [(u["series_number"], u["files"], u["reason"]) for u in report.unmapped] == [(301, 1, reason)]


def _missing_slice(ds):
    """The frame at slice 9 moved one gap further: a hole in the stack (uneven spacing)."""
    row, col = _oblique()
    k = SLICE_OF_FRAME.index(9)
    position = ORIGIN + 10 * GAP * np.cross(row, col)
    ds.PerFrameFunctionalGroupsSequence[k].PlanePositionSequence[0].ImagePositionPatient = [
        round(float(v), 4) for v in position]


def _damage_frame(k: int):
    """Zero the middle of the compressed frame ``k`` (the file stays complete; the codestream is broken)."""
    def edit(ds):
        frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
        middle = len(frames[k]) // 2
        frames[k] = frames[k][:middle - 50] + bytes(100) + frames[k][middle + 50:]
        ds.PixelData = encapsulate(frames)

    return edit


def _cut(path: Path, keep: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


@pytest.mark.parametrize("case, problem", [
    ("truncated", "truncated: pixel data needs 81920 bytes, the file holds"),
    ("truncated-rle", "corrupt DICOM file: nothing in it could be read (cut short?) (End of file reached"),
    ("damaged-jpeg-ls", "cannot decode the multi-frame pixel data"),
    ("missing-slice", "non-uniform slice spacing in the frames of series 301 ('T1TFE'): 2.400 mm before this"),
    ("malformed-position", "frame 2: ImagePositionPatient must hold 3 finite numbers"),
])
def test_damaged_files_are_errors_naming_the_file_not_its_folders(tmp_path, case, problem):
    src = tmp_path / "src"
    if case == "truncated":
        path = emri_copy(src / FOLDER)
        _cut(path, path.stat().st_size - 1000)
    elif case == "truncated-rle":
        path = emri_copy(src / FOLDER, "emri_small_RLE.dcm")
        _cut(path, path.stat().st_size - 3000)
    elif case == "damaged-jpeg-ls":
        path = emri_copy(src / FOLDER, "emri_small_jpeg_ls_lossless.dcm", edit=_damage_frame(4))
    elif case == "missing-slice":
        path = emri_copy(src / FOLDER, edit=_missing_slice)
    else:
        def edit(ds):
            ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0].ImagePositionPatient = [1.0, 2.0]

        path = emri_copy(src / FOLDER, edit=edit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the missing end of the cut pixel data
        with pytest.raises(InputError) as err:
            ingest(src, tmp_path / "out", pseudonymizer=Pseudonymizer.from_key("k"))
    message = str(err.value)
    assert problem in message and "emri.dcm" in message and "Doe" not in message and FOLDER not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bits, signed, slope, intercept", [
    (16, 0, 1, 0), (16, 0, 0.5, 0), (16, 0, 2, 0), (16, 0, 1, -1024), (12, 0, 1, -1024), (12, 0, 2, 0),
    (16, 1, 1, 0), (16, 1, 2, 0), (12, 1, 3, 0), (16, 0, -1, 0), (8, 0, 1, -128), (8, 0, 1, 1), (8, 1, 1, -1),
])
def test_pixel_type_after_rescale_is_the_one_simpleitk_gives_a_classic_series(tmp_path, make_series, bits, signed,
                                                                             slope, intercept):
    paths = make_series(tmp_path / "s", 2)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.BitsAllocated = 8 if bits == 8 else 16
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, signed
        if bits == 8:
            ds.PixelData = np.arange(ds.Rows * ds.Columns, dtype=np.uint8).tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.save_as(path)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in paths])
    classic = sitk.GetArrayFromImage(reader.Execute()).dtype
    stored = np.dtype(f"{'i' if signed else 'u'}{1 if bits == 8 else 2}")
    assert rescaled_dtype(stored, bits, {(float(slope), float(intercept))}) == classic


# ------------------------------------------------------------------------------------------ synthetic multi-frame DWI
def _legacy_converted(datasets: list[Dataset], number: int) -> Dataset:
    """One Legacy Converted Enhanced MR object (highdicom) of a classic series, keeping its SeriesInstanceUID
    (so that its DICOM-SEG still references it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hd.legacy.LegacyConvertedEnhancedMRImage(
            datasets, series_instance_uid=datasets[0].SeriesInstanceUID, series_number=number,
            sop_instance_uid=generate_uid(), instance_number=1)


def _directional(trace: list[Dataset]) -> list[Dataset]:
    """Three diffusion directions per trace slice, with other intensities (mixing them in would show)."""
    out = []
    for d, factor in enumerate((0.5, 0.7, 0.9)):
        for ds in trace:
            copy = pydicom.dcmread(ds.filename)
            copy.SOPInstanceUID = generate_uid()
            copy.InstanceNumber = 1000 * (d + 1) + int(ds.InstanceNumber)
            copy.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
            copy.PixelData = np.round(copy.pixel_array * factor).astype(np.uint16).tobytes()
            copy.DiffusionGradientOrientation = [float(d == 0), float(d == 1), float(d == 2)]
            out.append(copy)
    return out


def _enhanced_dwi(datasets: list[Dataset], number: int, trace: bool = True) -> Dataset:
    """An Enhanced MR DWI object: the legacy conversion of the trace (unless not ``trace``) and directional slices,
    with per-frame MRDiffusionSequence (b-value, ISOTROPIC/DIRECTIONAL/NONE, gradient direction) in place of the
    converted b-value tags, and its frames shuffled."""
    b1000 = [ds for ds in datasets if float(ds.DiffusionBValue) > 0]
    sources = [ds for ds in datasets if trace or ds not in b1000] + _directional(b1000)
    ds = _legacy_converted(sources, number)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    for item, source in zip(ds.PerFrameFunctionalGroupsSequence, sources, strict=True):
        unassigned = item.UnassignedPerFrameConvertedAttributesSequence[0]
        for keyword in ("DiffusionBValue", "DiffusionGradientOrientation"):
            if keyword in unassigned:
                delattr(unassigned, keyword)
        b = float(source.DiffusionBValue)
        diffusion = _item(DiffusionBValue=b, DiffusionDirectionality="NONE" if b == 0 else "ISOTROPIC")
        if "DiffusionGradientOrientation" in source:
            diffusion.DiffusionDirectionality = "DIRECTIONAL"
            diffusion.DiffusionGradientDirectionSequence = [
                _item(DiffusionGradientOrientation=source.DiffusionGradientOrientation)]
        item.MRDiffusionSequence = [diffusion]
    order = np.random.default_rng(0).permutation(len(sources))
    pixels = ds.pixel_array
    ds.PerFrameFunctionalGroupsSequence = [ds.PerFrameFunctionalGroupsSequence[i] for i in order]
    ds.PixelData = pixels[order].astype(pixels.dtype).tobytes()
    return ds


@pytest.fixture(scope="module")
def classic_and_multiframe(tmp_path_factory):
    """A synthetic patient (T2axi, T2sag, DWI at b 0 and 1000 with its SEG, scanner ADC) written as classic DICOM,
    and the same series each as one multi-frame file (the DWI as Enhanced MR with directional frames)."""
    from sarcomri.synth.acquisition import Protocol
    from sarcomri.synth.cohort import synthesise_cohort
    from sarcomri.synth.dicom import write_dicom

    root = tmp_path_factory.mktemp("mf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cohort = synthesise_cohort(root / "cohort", "sarcoma", 1, seed=0,
                                   protocol=Protocol(fov_mm=240.0, size=24, slices=6),
                                   sequences=["T2axi", "T2sag", "DWI_b0", "DWI_b1000", "ADC"])
        write_dicom(cohort, root / "classic")
    multi = root / "multiframe"
    for folder in sorted((root / "classic").iterdir()):
        if folder.is_file():
            continue
        for series in sorted(folder.iterdir()):
            if "_SEG_" in series.name:
                shutil.copytree(series, multi / folder.name / series.name)
                continue
            datasets = [pydicom.dcmread(p) for p in sorted(series.glob("*.dcm"))]
            number = int(datasets[0].SeriesNumber)
            ds = _enhanced_dwi(datasets, number) if "DWI" in series.name else _legacy_converted(datasets, number)
            (multi / folder.name / series.name).mkdir(parents=True)
            ds.save_as(multi / folder.name / series.name / "MF.dcm")
    return root / "classic", multi


def test_multiframe_dwi_ingests_to_the_same_cohort_as_its_classic_series(tmp_path, classic_and_multiframe):
    classic_src, multi_src = classic_and_multiframe
    assert len(list(multi_src.rglob("MF.dcm"))) == 4
    classic_report, classic = _ingest(classic_src, tmp_path / "classic", compute_adc=True)
    report, multi = _ingest(multi_src, tmp_path / "multi", compute_adc=True)
    assert set(classic.sequences) == {"T2axi", "T2sag", "DWI_b0", "DWI_b1000", "ADC", "ADC_computed"}
    assert set(multi.sequences) == set(classic.sequences) and multi.patient_ids == classic.patient_ids
    assert classic_report.unmapped == []
    # the directional frames gave way to the trace frames, as directional slices of a classic series do
    assert [(u["series_number"], u["files"], u["reason"]) for u in report.unmapped] == [
        (3, 18, "diffusion series: 18 directional image(s) at b=1000 (the trace image is used)")]
    pid = classic.patient_ids[0]
    for sequence in classic.sequences:
        a, b = classic.read_image(pid, sequence), multi.read_image(pid, sequence)
        assert a.GetSize() == b.GetSize() and a.GetPixelID() == b.GetPixelID(), sequence
        np.testing.assert_allclose(b.GetSpacing(), a.GetSpacing(), atol=1e-6, err_msg=sequence)
        np.testing.assert_allclose(b.GetOrigin(), a.GetOrigin(), atol=1e-6, err_msg=sequence)
        np.testing.assert_allclose(b.GetDirection(), a.GetDirection(), atol=1e-6, err_msg=sequence)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(b), sitk.GetArrayFromImage(a), err_msg=sequence)
    masks = {s for s in classic.sequences if classic.read_mask(pid, s) is not None}
    assert {"T2axi", "DWI_b0", "DWI_b1000"} <= masks  # the SEGs reference the series, found in both folders
    for sequence in masks:
        np.testing.assert_array_equal(sitk.GetArrayFromImage(multi.read_mask(pid, sequence)),
                                      sitk.GetArrayFromImage(classic.read_mask(pid, sequence)))
    assert multi.meta["adc"] == classic.meta["adc"]


def _classic_dwi(classic_src: Path) -> tuple[Path, list[Dataset]]:
    [series] = [s for s in classic_src.glob("*/*_DWI") if "_SEG_" not in s.name]
    return series, [pydicom.dcmread(p) for p in sorted(series.glob("*.dcm"))]


def test_directional_frames_without_a_trace_are_kept_aside_never_mixed(tmp_path, classic_and_multiframe):
    _, datasets = _classic_dwi(classic_and_multiframe[0])
    (tmp_path / "src").mkdir()
    _enhanced_dwi(datasets, 3, trace=False).save_as(tmp_path / "src" / "MF.dcm")
    report, cohort = _ingest(tmp_path / "src", tmp_path / "out")
    assert set(cohort.sequences) == {"DWI_b0"}
    assert [(u["files"], u["reason"]) for u in report.unmapped] == [
        (18, "multi-frame images: DWI_b1000: 18 frames at 6 positions: several volumes (time points, echoes or "
             "diffusion directions without a trace image), not one 3D volume")]
    assert "ADC not computed" in report.notes[0]


def test_legacy_converted_dwi_takes_its_b_values_from_the_converted_attributes(tmp_path, classic_and_multiframe):
    series, datasets = _classic_dwi(classic_and_multiframe[0])
    src = tmp_path / "src"
    src.mkdir()
    _legacy_converted(datasets, 3).save_as(src / "LCE.dcm")
    report, cohort = _ingest(src, tmp_path / "out", compute_adc=False)
    assert report.unmapped == [] and set(cohort.sequences) == {"DWI_b0", "DWI_b1000"}
    _, classic = _ingest(series, tmp_path / "classic", compute_adc=False)
    for sequence in ("DWI_b0", "DWI_b1000"):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(cohort.read_image(cohort.patient_ids[0], sequence)),
                                      sitk.GetArrayFromImage(classic.read_image(classic.patient_ids[0], sequence)))
