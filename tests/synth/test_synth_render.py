"""Rendering: true sagittal/coronal geometry, masks, DWI/ADC physics, Rician noise, texture, slice profile."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from sarcomri.cohort.sequences import plane_from_orientation
from sarcomri.synth import anatomy, appearance
from sarcomri.synth.acquisition import DIRECTIONS, Lattice, Protocol, grid_for

PROTOCOL = Protocol(fov_mm=240.0, size=80, slices=16)
LATENTS = dict(diameter_mm=50.0, margin=0.2, t2_ratio=1.3, heterogeneity=0.02, necrosis=0.0, adc=0.9,
               enhancement=1.0, exophytic=0.0)


def _phantom(seqs, latents=LATENTS, seed=3, placement="intramural"):
    rng = np.random.default_rng(seed)
    lat = Lattice.covering([grid_for(s, PROTOCOL) for s in seqs], PROTOCOL.fov_mm / PROTOCOL.size)
    anat = anatomy.draw_anatomy(rng)
    shape, uterus = anatomy.draw_tumour(rng, latents["diameter_mm"] / 2, latents["margin"], placement,
                                        anat["uterus"])
    return anatomy.paint(lat, anat, uterus, shape, latents["necrosis"], rng), shape


def _centroid_world(mask: np.ndarray, grid) -> np.ndarray:
    img = sitk.GetImageFromArray(mask)
    img.CopyInformation(grid.reference())
    k, j, i = np.nonzero(mask)
    idx = np.column_stack([i, j, k]).mean(axis=0)
    return np.array(img.TransformContinuousIndexToPhysicalPoint([float(v) for v in idx]))


def test_planes_have_their_direction_cosines():
    for seq, plane in (("T2axi", "axi"), ("T2sag", "sag"), ("T2cor", "cor"), ("fsT1CEsag", "sag")):
        g = grid_for(seq, PROTOCOL)
        d = g.direction
        assert np.allclose(np.cross(d[:, 0], d[:, 1]), d[:, 2])  # right-handed: normal = row x column
        assert plane_from_orientation(list(d[:, 0]) + list(d[:, 1])) == plane
        assert g.reference().GetDirection() == tuple(DIRECTIONS[plane].ravel())


def test_sagittal_and_coronal_are_resampled_not_relabelled():
    phantom, shape = _phantom(["T2axi", "T2sag", "T2cor"])
    centres = {s: _centroid_world(appearance.tumour_mask(phantom, grid_for(s, PROTOCOL)), grid_for(s, PROTOCOL))
               for s in ("T2axi", "T2sag", "T2cor")}
    for seq, c in centres.items():
        # every plane puts the tumour at the same place in the patient (within about a pixel)
        assert np.linalg.norm(c - shape.body.centre) < 4.0, seq
    axi = appearance.clean_image(phantom, "T2", LATENTS, grid_for("T2axi", PROTOCOL))
    sag = appearance.clean_image(phantom, "T2", LATENTS, grid_for("T2sag", PROTOCOL))
    assert axi.shape == sag.shape and not np.allclose(axi, sag)


def test_mask_volume_matches_the_painted_tumour():
    phantom, _ = _phantom(["T2axi"])
    g = grid_for("T2axi", PROTOCOL)
    vol = appearance.tumour_mask(phantom, g).sum() * np.prod(g.spacing)
    assert vol == pytest.approx(phantom.tumour_mm3, rel=0.15)
    assert phantom.tumour_mm3 == pytest.approx(4 / 3 * np.pi * 25**3 * 0.766, rel=0.3)


def test_necrotic_fraction_is_the_latent():
    lat = dict(LATENTS, necrosis=0.3)
    phantom, _ = _phantom(["T2axi"], lat)
    labels = phantom.labels[phantom.box]
    n_nec, n_tum = (labels == anatomy.NECROSIS).sum(), (labels == anatomy.TUMOUR).sum()
    assert n_nec / (n_nec + n_tum) == pytest.approx(0.3, abs=0.01)


def test_tumour_adc_on_the_scanner_map_matches_the_latent():
    """ADC fitted from the noisy b0/b1000 volumes recovers the tumour's latent ADC (bias field cancels)."""
    phantom, _ = _phantom(["ADC"])
    g = grid_for("ADC", PROTOCOL)
    vols = appearance.diffusion(phantom, LATENTS, g, gain=1000.0, noise=0.016, bias=0.2,
                                rng=np.random.default_rng(0))
    mask = ndimage.binary_erosion(appearance.tumour_mask(phantom, g).astype(bool), iterations=1)
    assert mask.sum() > 50
    assert np.median(vols["ADC"][mask]) == pytest.approx(900.0, rel=0.10)  # 0.9e-3 mm2/s in 1e-6 mm2/s
    # tumour bright on b1000 and dark on ADC relative to myometrium (ADC 1.65e-3)
    shell = ndimage.binary_dilation(mask, iterations=4) & ~ndimage.binary_dilation(mask, iterations=2)
    assert np.median(vols["ADC"][mask]) < np.median(vols["ADC"][shell])
    assert np.median(vols["DWI_b1000"][mask]) > np.median(vols["DWI_b1000"][shell])


def test_background_noise_is_rician():
    g = grid_for("T2axi", PROTOCOL)
    zero = np.zeros(tuple(reversed(g.size)), np.float32)
    out = appearance.acquire(zero, g, gain=1000.0, noise=0.02, bias=0.2, rng=np.random.default_rng(1))
    # magnitude of complex Gaussian noise with zero signal is Rayleigh: mean sigma sqrt(pi/2)
    assert out.mean() == pytest.approx(20.0 * np.sqrt(np.pi / 2), rel=0.01)


def test_heterogeneity_latent_drives_texture():
    cv = []
    for h in (0.05, 0.4):
        lat = dict(LATENTS, heterogeneity=h)
        phantom, _ = _phantom(["T2axi"], lat)
        g = grid_for("T2axi", PROTOCOL)
        img = appearance.clean_image(phantom, "T2", lat, g)
        m = ndimage.binary_erosion(appearance.tumour_mask(phantom, g).astype(bool), iterations=1)
        cv.append(img[m].std() / img[m].mean())
    assert cv[1] > 3 * cv[0]


def test_slice_profile_blurs_along_the_slice_normal():
    s = PROTOCOL.fov_mm / PROTOCOL.size
    z, y, x = appearance._sigmas(grid_for("T2axi", PROTOCOL), s)
    assert z == pytest.approx(4.5 / 2.3548 / s, rel=1e-3) and x == y < z
    z, y, x = appearance._sigmas(grid_for("T2sag", PROTOCOL), s)
    assert x == pytest.approx(4.5 / 2.3548 / s, rel=1e-3) and z == y < x  # sagittal slices stack along x


def test_bias_field_is_smooth_and_bounded():
    g = grid_for("T2axi", PROTOCOL)
    b = appearance.bias_field(g, 0.2, np.random.default_rng(2))
    assert 0.5 < b.min() and b.max() < 2.0
    assert np.abs(np.diff(b, axis=2)).max() < 0.02  # under 2% per pixel
