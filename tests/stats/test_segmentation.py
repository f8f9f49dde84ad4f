"""Segmentation metrics against a brute-force reference, hand counts, MONAI and MedPy; the `stats seg` CLI.

The brute-force reference is written here independently of the module: a surface voxel is a foreground
voxel with at least one of its 2*ndim face neighbours in the background or outside the array, and the
distances are the minima of all pairwise distances between surface-voxel centres scaled by the spacing
(scipy.spatial.distance.cdist).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from sarcomri.errors import InputError
from sarcomri.stats import segmentation as seg_module
from sarcomri.stats.segmentation import (
    METRIC_KEYS,
    segmentation_metrics,
    summarise_segmentation,
    surface,
    surface_distances,
    volume_diagonal_mm,
)


def _brute_surface(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask.astype(bool), 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    out = np.zeros(mask.shape, bool)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            out |= ~np.roll(padded, step, axis=axis)[inner]
    return out & mask.astype(bool)


def _brute_distances(pred, ref, spacing):
    a = np.argwhere(_brute_surface(pred)) * np.asarray(spacing)
    b = np.argwhere(_brute_surface(ref)) * np.asarray(spacing)
    d = cdist(a, b)
    return d.min(axis=1), d.min(axis=0)


def _brute_metrics(pred, ref, spacing):
    d_pr, d_rp = _brute_distances(pred, ref, spacing)
    pooled = np.concatenate([d_pr, d_rp])
    return {
        "hd95_mm": max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)),
        "assd_mm": pooled.mean(),
        "hd_mm": pooled.max(),
    }


def _blob(shape, rng, n_seeds=3, sigma=2.0, level=0.5):
    """A random smooth blob (thresholded smoothed noise around a few seeds)."""
    field = np.zeros(shape)
    for _ in range(n_seeds):
        field[tuple(rng.integers(0, s) for s in shape)] = 1.0
    field = ndimage.gaussian_filter(field, sigma)
    return field > level * field.max() * rng.uniform(0.2, 0.6)


CASES = {
    "blobs_isotropic": (1.0, 1.0, 1.0),
    "blobs_anisotropic": (3.3, 0.98, 0.98),
    "blobs_very_anisotropic": (5.0, 0.5, 0.7),
}


@pytest.mark.parametrize("spacing", list(CASES.values()), ids=list(CASES))
def test_distances_match_brute_force_on_random_blobs(spacing):
    rng = np.random.default_rng(int(spacing[0] * 10))
    for _ in range(4):
        pred = _blob((10, 18, 16), rng)
        ref = _blob((10, 18, 16), rng)
        got = segmentation_metrics(pred, ref, spacing)
        want = _brute_metrics(pred, ref, spacing)
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        d_pr, d_rp = surface_distances(pred, ref, spacing)
        b_pr, b_rp = _brute_distances(pred, ref, spacing)
        np.testing.assert_allclose(d_pr, b_pr, rtol=1e-12)
        np.testing.assert_allclose(d_rp, b_rp, rtol=1e-12)


def test_surface_is_face_connected_with_background_outside():
    rng = np.random.default_rng(3)
    for _ in range(5):
        m = rng.random((6, 7, 8)) < 0.6
        np.testing.assert_array_equal(surface(m), _brute_surface(m))
    full = np.ones((3, 4, 5), bool)
    # a mask filling the volume: only the innermost voxels (1, 1..2, 1..3) are interior
    assert int(surface(full).sum()) == full.size - 1 * 2 * 3


def test_thin_one_voxel_structures():
    pred = np.zeros((7, 12, 12), bool)
    ref = np.zeros((7, 12, 12), bool)
    pred[3, 2:10, 5] = True  # a one-voxel-thin line
    ref[3, 2:10, 7] = True  # parallel, two columns away
    ref[1:6, 6, 6] = True  # and a thin stalk through the slices
    spacing = (3.0, 0.8, 1.1)
    got = segmentation_metrics(pred, ref, spacing)
    want = _brute_metrics(pred, ref, spacing)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    # a single voxel against itself: every distance is 0, Dice 1
    one = np.zeros((3, 3, 3), bool)
    one[1, 1, 1] = True
    m = segmentation_metrics(one, one, spacing)
    assert (m["dice"], m["hd_mm"], m["hd95_mm"], m["assd_mm"]) == (1.0, 0.0, 0.0, 0.0)


def test_tumour_touching_the_volume_border():
    # Without padding, the face on the border would not be surface and distances would change.
    pred = np.zeros((5, 10, 10), bool)
    ref = np.zeros((5, 10, 10), bool)
    pred[:, :6, :5] = True  # touches z=0, z=4, y=0 and x=0 borders
    ref[:, :4, :7] = True
    spacing = (4.0, 1.0, 1.0)
    got = segmentation_metrics(pred, ref, spacing)
    want = _brute_metrics(pred, ref, spacing)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    # the z = 0 face of the prediction is surface: it is 0 mm from the reference's z = 0 face
    d_pr, _ = surface_distances(pred, ref, spacing)
    assert d_pr.size == int(_brute_surface(pred).sum())
    assert _brute_surface(pred)[0].sum() == 6 * 5


def test_crop_gives_the_same_distances_as_the_full_volume():
    """The bounding-box crop (no margin) must equal the EDT of the whole volume, voxel for voxel."""
    rng = np.random.default_rng(11)
    spacing = np.array([2.5, 0.7, 0.9])
    st = ndimage.generate_binary_structure(3, 1)
    for trial in range(6):
        shape = (12, 30, 28)
        pred, ref = np.zeros(shape, bool), np.zeros(shape, bool)
        # a blob and a box far apart; in odd trials the box touches the z border of the volume
        pred[2:6, 3:9, 4:10] = _blob((4, 6, 6), rng, sigma=1.0) | (trial % 2 == 0)
        ref[7:12 if trial % 2 else 10, 20:27, 18:28] = True
        full_ps = pred ^ ndimage.binary_erosion(pred, st, border_value=0)
        full_rs = ref ^ ndimage.binary_erosion(ref, st, border_value=0)
        full_pr = ndimage.distance_transform_edt(~full_rs, sampling=spacing)[full_ps]
        full_rp = ndimage.distance_transform_edt(~full_ps, sampling=spacing)[full_rs]
        d_pr, d_rp = surface_distances(pred, ref, spacing)
        np.testing.assert_allclose(d_pr, full_pr, rtol=1e-13)
        np.testing.assert_allclose(d_rp, full_rp, rtol=1e-13)


def test_overlap_metrics_against_a_hand_count():
    pred = np.zeros((2, 4, 4), np.uint8)
    ref = np.zeros((2, 4, 4), np.uint8)
    pred[0, :2, :3] = 1  # 6 voxels
    ref[0, 1:3, :3] = 1  # 6 voxels, 3 shared
    ref[1, 0, 0] = 1  # 7 reference voxels in all
    m = segmentation_metrics(pred, ref, (5.0, 1.0, 2.0))
    tp, fp, fn = 3, 3, 4
    assert (m["tp"], m["fp"], m["fn"]) == (tp, fp, fn)
    assert m["dice"] == pytest.approx(6 / 13)
    assert m["iou"] == pytest.approx(3 / 10)
    assert m["sensitivity"] == pytest.approx(3 / 7)
    assert m["precision"] == pytest.approx(3 / 6)
    # F2 = (1 + 4) P R / (4 P + R)
    p, r = 0.5, 3 / 7
    assert m["f2"] == pytest.approx(5 * p * r / (4 * p + r))
    assert m["pred_volume_mm3"] == pytest.approx(6 * 10.0)
    assert m["ref_volume_mm3"] == pytest.approx(7 * 10.0)
    assert list(m) == list(METRIC_KEYS)


def test_empty_mask_policy():
    shape, spacing = (4, 5, 6), (3.0, 1.0, 0.5)
    empty = np.zeros(shape, bool)
    full = np.zeros(shape, bool)
    full[1:3, 1:4, 2:5] = True
    both = segmentation_metrics(empty, empty, spacing)
    assert both["dice"] == both["iou"] == both["f2"] == both["sensitivity"] == both["precision"] == 1.0
    assert both["hd95_mm"] == both["assd_mm"] == both["hd_mm"] == 0.0
    assert both["empty_pred"] and both["empty_ref"]
    diag = math.sqrt(12.0**2 + 5.0**2 + 3.0**2)
    assert volume_diagonal_mm(shape, spacing) == pytest.approx(diag)
    for pred, ref in ((empty, full), (full, empty)):
        m = segmentation_metrics(pred, ref, spacing)
        assert m["dice"] == m["iou"] == m["f2"] == m["sensitivity"] == m["precision"] == 0.0
        assert m["hd95_mm"] == m["assd_mm"] == m["hd_mm"] == pytest.approx(diag)
        assert (m["empty_pred"], m["empty_ref"]) == (not pred.any(), not ref.any())
        assert not any(isinstance(v, float) and math.isnan(v) for v in m.values())
    inf = segmentation_metrics(empty, full, spacing, empty_distance=float("inf"))
    assert math.isinf(inf["hd95_mm"])
    with pytest.raises(InputError, match="non-empty"):
        surface_distances(empty, full, spacing)


def test_summary_reports_empty_cases_instead_of_nan():
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(5):
        rows.append(segmentation_metrics(_blob((8, 12, 12), rng), _blob((8, 12, 12), rng), (2.0, 1.0, 1.0)))
    ref = _blob((8, 12, 12), rng)
    rows.append(segmentation_metrics(np.zeros_like(ref), ref, (2.0, 1.0, 1.0)))  # missed tumour
    table = pd.DataFrame(rows)
    s = summarise_segmentation(table)
    assert s.loc["dice", "n"] == 6 and s.loc["hd95_mm", "n"] == 5
    assert s.loc["dice", "n_empty_pred"] == 1 and s.loc["dice", "n_empty_ref"] == 0
    assert s.loc["dice", "mean"] == pytest.approx(table["dice"].mean())
    assert s.loc["hd95_mm", "median"] == pytest.approx(np.median(table["hd95_mm"][:5]))
    q1, q3 = np.percentile(table["assd_mm"][:5], [25, 75])
    assert s.loc["assd_mm", "iqr"] == pytest.approx(q3 - q1)
    assert not s[["median", "mean", "iqr"]].isna().any().any()
    with_empty = summarise_segmentation(table, include_empty_distances=True)
    assert with_empty.loc["hd95_mm", "n"] == 6
    table.loc[0, "dice"] = np.nan
    with pytest.raises(InputError, match="missing"):
        summarise_segmentation(table)


def test_input_checks():
    a = np.zeros((3, 4, 5), np.uint8)
    with pytest.raises(InputError, match="not binary"):
        segmentation_metrics(a + 2, a, (1, 1, 1))
    with pytest.raises(InputError, match="shape"):
        segmentation_metrics(a, a[:2], (1, 1, 1))
    with pytest.raises(InputError, match="spacing has 2 values"):
        segmentation_metrics(a, a, (1, 1))
    with pytest.raises(InputError, match="positive"):
        segmentation_metrics(a, a, (1, 0, 1))
    with pytest.raises(InputError, match="not binary"):
        segmentation_metrics(np.full((2, 2), np.nan), np.zeros((2, 2)), (1, 1))


def _pairs_for_libraries():
    rng = np.random.default_rng(21)
    for spacing in ((1.0, 1.0, 1.0), (3.3, 0.98, 0.98), (2.0, 0.6, 1.4)):
        for _ in range(3):
            yield _blob((10, 20, 18), rng), _blob((10, 20, 18), rng), spacing


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")  # inside MONAI
def test_agrees_with_monai():
    """MONAI uses our definitions: 6-connected erosion after cropping with a zero-padded margin (border voxels
    are surface), HD95 = max of the two directed 95th percentiles (torch.quantile, linear interpolation), and
    the symmetric average surface distance pools both directions. It returns float32 distances, hence the
    tolerance."""
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    for pred, ref, spacing in _pairs_for_libraries():
        y_pred = torch.from_numpy(np.stack([~pred, pred])[None].astype(np.float32))
        y = torch.from_numpy(np.stack([~ref, ref])[None].astype(np.float32))
        ours = segmentation_metrics(pred, ref, spacing)
        hd95 = metrics.compute_hausdorff_distance(y_pred, y, percentile=95, spacing=list(spacing)).item()
        hd = metrics.compute_hausdorff_distance(y_pred, y, spacing=list(spacing)).item()
        assd = metrics.compute_average_surface_distance(y_pred, y, symmetric=True, spacing=list(spacing)).item()
        assert ours["hd95_mm"] == pytest.approx(hd95, rel=1e-5)
        assert ours["hd_mm"] == pytest.approx(hd, rel=1e-5)
        assert ours["assd_mm"] == pytest.approx(assd, rel=1e-5)


def test_agrees_with_medpy_where_definitions_match():
    """MedPy (medpy.metric.binary) uses the same surface (connectivity=1 is the face-connected structure;
    binary_erosion with background outside) and the same pooled ASSD, so `assd` and `hd` match exactly.
    Its `hd95` differs by definition: the 95th percentile of both directions pooled, instead of the larger
    of the two directed 95th percentiles; we check it against that pooled percentile of our distances, and
    that it never exceeds our HD95."""
    binary = pytest.importorskip("medpy.metric.binary")
    for pred, ref, spacing in _pairs_for_libraries():
        ours = segmentation_metrics(pred, ref, spacing)
        assert ours["assd_mm"] == pytest.approx(binary.assd(pred, ref, voxelspacing=spacing), rel=1e-12)
        assert ours["hd_mm"] == pytest.approx(binary.hd(pred, ref, voxelspacing=spacing), rel=1e-12)
        medpy_hd95 = binary.hd95(pred, ref, voxelspacing=spacing)
        d_pr, d_rp = surface_distances(pred, ref, spacing)
        assert medpy_hd95 == pytest.approx(np.percentile(np.concatenate([d_pr, d_rp]), 95), rel=1e-12)
        assert medpy_hd95 <= ours["hd95_mm"] + 1e-9


# ---------------------------------------------------------------- the `sarcomri stats seg` command


def _write(path, arr, spacing_xyz=(0.8, 0.8, 3.0), origin=(0.0, 0.0, 0.0)):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing(spacing_xyz)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return path


@pytest.fixture()
def seg_app():
    import typer

    from sarcomri.cli.stats_seg import seg

    app = typer.Typer()
    app.command("seg")(seg)
    app.command("noop")(lambda: None)  # two commands keep "seg" as a sub-command name
    return app


def test_cli_reads_spacing_from_the_files_and_prints_json(tmp_path, seg_app):
    from typer.testing import CliRunner

    rng = np.random.default_rng(8)
    pred, ref = _blob((8, 16, 14), rng), _blob((8, 16, 14), rng)
    p = _write(tmp_path / "pred.nii.gz", pred)
    r = _write(tmp_path / "ref.nii.gz", ref)
    res = CliRunner().invoke(seg_app, ["seg", "--pred", str(p), "--ref", str(r), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    want = _brute_metrics(pred, ref, (3.0, 0.8, 0.8))  # SimpleITK (x, y, z) reversed
    assert out["hd95_mm"] == pytest.approx(want["hd95_mm"], rel=1e-6)
    assert out["assd_mm"] == pytest.approx(want["assd_mm"], rel=1e-6)
    assert out["spacing_zyx_mm"] == pytest.approx([3.0, 0.8, 0.8])  # NIfTI stores float32
    assert set(METRIC_KEYS) <= set(out)
    table = CliRunner().invoke(seg_app, ["seg", "--pred", str(p), "--ref", str(r)])
    assert table.exit_code == 0 and "HD95" in table.output


def test_cli_refuses_masks_on_different_grids(tmp_path, seg_app):
    from typer.testing import CliRunner

    m = np.zeros((4, 6, 6), np.uint8)
    m[1:3, 2:4, 2:4] = 1
    p = _write(tmp_path / "pred.nii.gz", m)
    r = _write(tmp_path / "ref.nii.gz", m, origin=(0.0, 0.0, 9.0))
    res = CliRunner().invoke(seg_app, ["seg", "--pred", str(p), "--ref", str(r)])
    assert isinstance(res.exception, InputError)
    assert "pred.nii.gz" in str(res.exception) and "ref.nii.gz" in str(res.exception)
    assert "origin" in str(res.exception)


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")  # inside MONAI
def test_real_sarcoma_contour_against_medpy_and_monai(shared_data):
    """STS_001 GTV (0.98 x 0.98 x 3.27 mm) against a perturbed copy (shifted, dilated in-plane on some
    slices, one slice dropped), and the same pair cut so the tumour runs through both ends of the volume."""
    import SimpleITK as sitk

    binary = pytest.importorskip("medpy.metric.binary")
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    image = sitk.ReadImage(str(shared_data / "sts-t1" / "STS_001" / "mask.nii.gz"))
    ref = sitk.GetArrayFromImage(image) > 0
    spacing = tuple(reversed(image.GetSpacing()))
    pred = np.roll(ref, (1, 2, -3), axis=(0, 1, 2))
    pred[20:30] = ndimage.binary_dilation(pred[20:30], ndimage.generate_binary_structure(3, 1)[1:2], 2)
    pred[35] = False
    for p, r in ((pred, ref), (pred[18:38], ref[18:38])):
        ours = segmentation_metrics(p, r, spacing)
        assert ours["assd_mm"] == pytest.approx(binary.assd(p, r, voxelspacing=spacing), rel=1e-12)
        assert ours["hd_mm"] == pytest.approx(binary.hd(p, r, voxelspacing=spacing), rel=1e-12)
        assert ours["dice"] == pytest.approx(binary.dc(p, r), rel=1e-12)
        y_pred = torch.from_numpy(np.stack([~p, p])[None])
        y = torch.from_numpy(np.stack([~r, r])[None])
        hd95 = metrics.compute_hausdorff_distance(y_pred, y, percentile=95, spacing=list(spacing)).item()
        assert ours["hd95_mm"] == pytest.approx(hd95, rel=1e-5)
        assert 0.5 < ours["dice"] < 0.95 and ours["hd95_mm"] > 1.0  # a real, imperfect pair


# ---------------------------------------------------------------- two empty masks: both_empty and --empty-dice

OVERLAP = ("dice", "iou", "f2", "sensitivity", "precision")
DISTANCES = ("hd95_mm", "assd_mm", "hd_mm")


def test_both_empty_flag_and_the_empty_dice_policy():
    shape, spacing = (4, 5, 6), (3.0, 1.0, 0.5)
    empty, full = np.zeros(shape, bool), np.zeros(shape, bool)
    full[1:3, 1:4, 2:5] = True
    one = segmentation_metrics(empty, empty, spacing)
    assert one["both_empty"] and all(one[k] == 1.0 for k in OVERLAP) and all(one[k] == 0.0 for k in DISTANCES)
    assert segmentation_metrics(empty, empty, spacing, empty_dice=1.0) == one
    nan = segmentation_metrics(empty, empty, spacing, empty_dice=float("nan"))
    assert nan["both_empty"] and all(math.isnan(nan[k]) for k in OVERLAP + DISTANCES)
    assert nan["tp"] == nan["fp"] == nan["fn"] == 0
    for pred, ref in ((empty, full), (full, empty), (full, full)):
        for policy in (1.0, float("nan")):
            m = segmentation_metrics(pred, ref, spacing, empty_dice=policy)
            assert not m["both_empty"]
            assert not any(isinstance(v, float) and math.isnan(v) for v in m.values())  # the policy is unused
            assert m["dice"] == (1.0 if pred.any() and ref.any() else 0.0)
    for bad in (0.0, 0.5, 2.0, float("inf"), "one"):
        with pytest.raises(InputError, match="empty_dice must be 1 or nan"):
            segmentation_metrics(empty, empty, spacing, empty_dice=bad)


def test_cli_both_empty_and_empty_dice(tmp_path, seg_app):
    from typer.testing import CliRunner

    empty, blob = np.zeros((4, 6, 6), np.uint8), np.zeros((4, 6, 6), np.uint8)
    blob[1:3, 2:4, 2:4] = 1
    e1, e2 = _write(tmp_path / "e1.nii.gz", empty), _write(tmp_path / "e2.nii.gz", empty)
    b = _write(tmp_path / "b.nii.gz", blob)
    run = CliRunner().invoke

    default = json.loads(run(seg_app, ["seg", "--pred", str(e1), "--ref", str(e2), "--json"]).output)
    assert default["both_empty"] is True and default["dice"] == 1.0 and default["hd95_mm"] == 0.0
    res = run(seg_app, ["seg", "--pred", str(e1), "--ref", str(e2), "--json", "--empty-dice", "nan"])
    undefined = json.loads(res.output)  # strict JSON: NaN is written as null
    assert undefined["both_empty"] is True and all(undefined[k] is None for k in OVERLAP + DISTANCES)
    for policy in ("1", "nan"):
        one_empty = json.loads(run(seg_app, ["seg", "--pred", str(e1), "--ref", str(b), "--json",
                                             "--empty-dice", policy]).output)
        assert one_empty["both_empty"] is False and one_empty["dice"] == 0.0
    table = run(seg_app, ["seg", "--pred", str(e1), "--ref", str(e2), "--empty-dice", "nan"], terminal_width=200)
    assert table.exit_code == 0 and "Both masks empty" in table.output and "yes" in table.output
    assert "nan" in table.output
    table = run(seg_app, ["seg", "--pred", str(b), "--ref", str(b)], terminal_width=200)
    assert "Both masks empty" in table.output and "no" in table.output
    bad = run(seg_app, ["seg", "--pred", str(e1), "--ref", str(e2), "--empty-dice", "0"])
    assert bad.exit_code == 2 and "--empty-dice" in bad.output


# ---------------------------------------------------------------- surface distances: k-d tree vs the whole-array EDT


def _edt_reference(pred, ref, spacing):
    """The straightforward method (the module's before the k-d tree): face-connected surfaces with background
    outside, and ``distance_transform_edt`` of the other surface's complement over the whole array."""
    st = ndimage.generate_binary_structure(pred.ndim, 1)
    ps = pred & ~ndimage.binary_erosion(pred, st, border_value=0)
    rs = ref & ~ndimage.binary_erosion(ref, st, border_value=0)
    d_pr = ndimage.distance_transform_edt(~rs, sampling=spacing)[ps]
    d_rp = ndimage.distance_transform_edt(~ps, sampling=spacing)[rs]
    return d_pr, d_rp


def _metrics_of(d_pr, d_rp):
    pooled = np.concatenate([d_pr, d_rp])
    return {"hd95_mm": max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)), "assd_mm": pooled.mean(),
            "hd_mm": pooled.max()}


def _assert_as_reference(pred, ref, spacing, label=""):
    """Directed distances (same order) and HD95/ASSD/HD equal to :func:`_edt_reference`'s, to rounding."""
    want_pr, want_rp = _edt_reference(pred, ref, spacing)
    d_pr, d_rp = surface_distances(pred, ref, spacing)
    assert d_pr.shape == want_pr.shape and d_rp.shape == want_rp.shape
    np.testing.assert_allclose(d_pr, want_pr, rtol=1e-12, atol=0)
    np.testing.assert_allclose(d_rp, want_rp, rtol=1e-12, atol=0)
    got = segmentation_metrics(pred, ref, spacing)
    for key, value in _metrics_of(want_pr, want_rp).items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=0), (label, key)


def _ellipsoid(shape, centre, radii):
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0


def _structured_pairs():
    """(name, pred, ref, spacing): the shapes where a shortcut would show."""
    rng = np.random.default_rng(15)
    shape = (12, 30, 28)
    sp3 = (3.3, 0.7, 0.9)
    yield "3d_blobs_anisotropic", _blob(shape, rng), _blob(shape, rng), sp3
    yield "3d_blobs_very_anisotropic", _blob(shape, rng), _blob(shape, rng), (6.0, 0.45, 1.3)
    border_p, border_r = np.zeros(shape, bool), np.zeros(shape, bool)
    border_p[:, :9, -7:] = True  # runs through both z ends, touches y = 0 and the last x
    border_r[:5, :12, -10:] = True  # a box in the corner at z = 0, y = 0 and the last x
    yield "3d_touching_borders", border_p, border_r, sp3
    one_p, one_r = np.zeros(shape, bool), np.zeros(shape, bool)
    one_p[0, 0, 0], one_r[7, 20, 13] = True, True
    yield "3d_one_voxel_each", one_p, one_r, sp3
    yield "3d_one_voxel_vs_large", one_r, _ellipsoid(shape, (6, 15, 14), (5, 13, 12)), sp3
    island = _ellipsoid(shape, (5, 10, 10), (3, 7, 6))
    island_p = island | _ellipsoid(shape, (10, 27, 26), (1, 2, 2))  # a false positive in the far corner
    yield "3d_far_island", island_p, np.roll(island, (1, 2, -1), axis=(0, 1, 2)), sp3
    yield "3d_small_inside_large", _ellipsoid(shape, (6, 15, 14), (1, 2, 2)), np.ones(shape, bool), sp3
    yield "3d_identical", island, island.copy(), sp3
    yield "3d_random_speckle", rng.random(shape) < 0.15, rng.random(shape) < 0.3, sp3
    slab_p, slab_r = np.zeros(shape, bool), np.zeros(shape, bool)
    slab_p[4], slab_r[6, 3:20, 5:25] = True, True  # one slice thick, the first filling its slice
    yield "3d_one_slice_thick", slab_p, slab_r, (4.0, 0.8, 0.8)
    shape2 = (40, 36)
    yield "2d_blobs", _blob(shape2, rng), _blob(shape2, rng), (0.8, 1.7)
    edge_p, edge_r = np.zeros(shape2, bool), np.zeros(shape2, bool)
    edge_p[:10, :] = True
    edge_p[38:, 34:] = True  # an island in the opposite corner
    edge_r[3:15, 2:30] = True
    yield "2d_border_and_island", edge_p, edge_r, (0.5, 1.25)
    px = np.zeros(shape2, bool)
    px[20, 17] = True
    yield "2d_one_pixel_vs_blob", px, _blob(shape2, rng), (1.0, 1.0)


STRUCTURED = list(_structured_pairs())


@pytest.mark.parametrize("method", ["auto", "kd_tree", "transform"])
@pytest.mark.parametrize("case", STRUCTURED, ids=[c[0] for c in STRUCTURED])
def test_surface_distances_equal_the_whole_array_transform(case, method, monkeypatch):
    """Directed distances (same order, one per surface voxel) and HD95/ASSD/HD as the whole-array EDT gives
    them, whichever way the nearest surface voxel is found (the k-d tree or the cropped feature transform)."""
    if method != "auto":
        monkeypatch.setattr(seg_module, "_KD_WORK_PER_VOXEL", math.inf if method == "kd_tree" else 0.0)
    name, pred, ref, spacing = case
    _assert_as_reference(pred, ref, spacing, name)


def test_random_masks_equal_the_whole_array_transform():
    """Many small random pairs in 2D and 3D, with random anisotropic spacing and random placement."""
    rng = np.random.default_rng(1515)
    for trial in range(30):
        shape = (int(rng.integers(1, 9)), 17, 13) if trial % 3 else (19, 23)
        spacing = tuple(rng.uniform(0.3, 5.0, len(shape)))
        pred = _blob(shape, rng, n_seeds=int(rng.integers(1, 5)), sigma=1.5) if trial % 2 else rng.random(shape) < 0.2
        ref = _blob(shape, rng, n_seeds=int(rng.integers(1, 5)), sigma=1.5)
        if not pred.any() or not ref.any():
            continue
        _assert_as_reference(pred, ref, spacing, trial)


def test_the_cheaper_search_is_chosen(monkeypatch):
    """The k-d tree for surfaces near each other; the feature transform when one surface surrounds the other
    from afar (a mask filling the volume: every search would visit thousands of tree points)."""
    calls: list[bool] = []
    choose = seg_module._kd_tree_is_cheaper
    monkeypatch.setattr(seg_module, "_kd_tree_is_cheaper", lambda *a: calls.append(choose(*a)) or calls[-1])
    shape, spacing = (24, 96, 96), (3.0, 0.7, 0.7)
    tumour = _ellipsoid(shape, (12, 48, 48), (8, 30, 34))
    near = np.roll(tumour, (1, 2, -2), axis=(0, 1, 2))
    segmentation_metrics(near, tumour, spacing)
    assert calls == [True, True]
    calls.clear()
    full = np.ones(shape, bool)
    d_pr, d_rp = surface_distances(full, tumour, spacing)
    assert calls[1] is False  # from the tumour to the faces of the volume
    want_pr, want_rp = _edt_reference(full, tumour, spacing)
    np.testing.assert_allclose(d_pr, want_pr, rtol=1e-12, atol=0)
    np.testing.assert_allclose(d_rp, want_rp, rtol=1e-12, atol=0)


def test_surface_and_bounding_box_in_any_dimension():
    """surface() equals mask & ~binary_erosion(face-connected, border_value=0) in 1 to 4 dimensions, also on
    strided views; the bounding box equals ndimage.find_objects (None for an empty mask)."""
    rng = np.random.default_rng(4)
    for shape in ((9,), (7, 8), (5, 6, 7), (3, 4, 5, 6)):
        st = ndimage.generate_binary_structure(len(shape), 1)
        for fraction in (0.0, 0.05, 0.6, 1.0):
            m = rng.random(shape) < fraction if fraction < 1 else np.ones(shape, bool)
            np.testing.assert_array_equal(surface(m), m & ~ndimage.binary_erosion(m, st, border_value=0))
            want = ndimage.find_objects(m.view(np.uint8))
            assert seg_module._bounding_box(m) == (want[0] if want else None)
    big = rng.random((8, 10, 12)) < 0.7
    view = big[::2, 1:, ::-1]
    np.testing.assert_array_equal(surface(view), view & ~ndimage.binary_erosion(view, border_value=0))


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")  # inside MONAI
def test_structured_pairs_agree_with_monai():
    """MONAI's HD95 (directed percentiles, max) and symmetric ASSD on the 3D and 2D structured pairs (float32
    distances in MONAI, hence the tolerance)."""
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    for name, pred, ref, spacing in STRUCTURED:
        y_pred = torch.from_numpy(np.stack([~pred, pred])[None].astype(np.float32))
        y = torch.from_numpy(np.stack([~ref, ref])[None].astype(np.float32))
        ours = segmentation_metrics(pred, ref, spacing)
        hd95 = metrics.compute_hausdorff_distance(y_pred, y, percentile=95, spacing=list(spacing)).item()
        assd = metrics.compute_average_surface_distance(y_pred, y, symmetric=True, spacing=list(spacing)).item()
        assert ours["hd95_mm"] == pytest.approx(hd95, rel=1e-5, abs=1e-6), name
        assert ours["assd_mm"] == pytest.approx(assd, rel=1e-5, abs=1e-6), name


@pytest.mark.shared
def test_real_sarcoma_masks_equal_the_whole_array_transform(shared_data):
    """Three real GTVs (0.98 x 0.98 x 3.27 mm) against shifted, dilated, eroded and cut copies, and against a
    copy with scattered one-voxel false positives: the same distances as the whole-array EDT."""
    import SimpleITK as sitk

    st = ndimage.generate_binary_structure(3, 1)
    for pid in ("STS_001", "STS_002", "STS_024"):
        path = shared_data / "sts-t1" / pid / "mask.nii.gz"
        if not path.is_file():
            pytest.skip(f"{path} not found")
        image = sitk.ReadImage(str(path))
        ref = sitk.GetArrayFromImage(image) > 0
        spacing = tuple(reversed(image.GetSpacing()))
        cut = ref.copy()
        cut[: ref.shape[0] // 2] = False
        speckle = ref | (np.random.default_rng(0).random(ref.shape) < 2e-4)
        for pred in (np.roll(ref, (1, 3, -2), axis=(0, 1, 2)), ndimage.binary_dilation(ref, st, 2),
                     ndimage.binary_erosion(ref, st, 2), cut, speckle):
            _assert_as_reference(pred, ref, spacing, pid)
