"""The slice stage beside a 3D model: the gated fusion of the two probabilities, its settings, a cross-validation
that trains it in every fold (its folder, its metadata, its time), inference through it, and a resumed run that
trains only the missing slice stage; a damaged, unfinished or missing slice stage in an ensemble is one error."""

import numpy as np
import pytest
import SimpleITK as sitk
from pydantic import ValidationError

from sarcomri.errors import InputError
from sarcomri.seg3d.config import Seg3DConfig, SlicesSettings
from sarcomri.seg3d.crossval import fold_done, run_crossval
from sarcomri.seg3d.infer import Model, find_models, nonzero_region, predict_images
from sarcomri.seg3d.slices import SLICES_DIR, coverage, epochs_for, gated_fusion, slices_probability

from .conftest import assert_only_stage_retrained

TINY = {
    "name": "tiny", "sequences": ["T1"], "folds": 2,
    "plan": {"max_patch_voxels": 8 * 16 * 16, "min_coverage": 0.0, "base_filters": 4, "max_filters": 16},
    "train": {"epochs": 1, "iterations": 2, "lr": 0.01, "threads": 1},
    "infer": {"mirror": False, "largest_component": False},
    "slices": {"network": {"arch": "unet", "encoder": "tu-mobilenetv2_035", "decoder_channels": 16},
               "image_size": 32, "steps": 3, "batch_size": 4},
}


def _blocks() -> tuple[np.ndarray, np.ndarray]:
    """A 3D probability whose mask runs on over slices 2-7 and a 2D one that stops at slice 4."""
    p3 = np.zeros((10, 8, 8), np.float32)
    p3[2:8, 2:6, 2:6] = 0.9
    p2 = np.zeros_like(p3)
    p2[2:5, 2:6, 2:6] = 0.8
    return p3, p2


def test_coverage_is_the_fraction_of_the_3d_mask_the_2d_mask_covers():
    p3, p2 = _blocks()
    assert coverage(p3 > 0.5, p2 > 0.5) == pytest.approx(3 / 6)
    assert coverage(np.zeros((2, 2, 2), bool), np.ones((2, 2, 2), bool)) == 0.0


def test_gated_fusion_averages_where_the_2d_mask_agrees_and_keeps_the_3d_result_where_it_does_not():
    p3, p2 = _blocks()
    fused = gated_fusion(p3, p2, 0.4, 0.5, SlicesSettings(gate=0.25, weight=0.5, threshold=0.5))
    assert fused is not None
    prob, threshold = fused
    np.testing.assert_allclose(prob, 0.5 * p3 + 0.5 * p2)
    assert threshold == 0.5
    mask = prob >= threshold
    assert mask[2:5].sum() == 3 * 16 and not mask[5:].any()  # the run-on slices are gone
    # the 2D network covers half of the 3D mask: a gate above that stays closed
    assert gated_fusion(p3, p2, 0.4, 0.5, SlicesSettings(gate=0.6)) is None
    # a 2D network that missed the tumour leaves the 3D result alone
    assert gated_fusion(p3, np.zeros_like(p2), 0.4, 0.5, SlicesSettings()) is None
    # nothing found in 3D: nothing to fuse
    assert gated_fusion(np.zeros_like(p3), p2, 0.4, 0.5, SlicesSettings(gate=0.0)) is None
    # the weight and the 3D post-processing (an island below half the main component's mass does not count)
    island = p3.copy()
    island[0, 0:2, 0:2] = 0.9
    prob, _ = gated_fusion(island, p2, 0.4, 0.5, SlicesSettings(weight=0.25))
    np.testing.assert_allclose(prob, 0.75 * island + 0.25 * p2)


def test_slices_settings_are_checked():
    with pytest.raises(ValidationError, match="multiple of 16"):
        SlicesSettings(image_size=100)
    for bad in ({"gate": 1.5}, {"weight": 0.0}, {"threshold": 1.0}, {"steps": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            SlicesSettings(**bad)
    cfg = Seg3DConfig(name="x", cohort="c", sequences=["T1"], slices={})
    assert cfg.slices.network.encoder == "tu-efficientnet_lite0" and cfg.slices.network.encoder_weights == "imagenet"
    assert Seg3DConfig(name="x", cohort="c", sequences=["T1"]).slices is None


def test_epochs_make_about_the_asked_steps():
    s = SlicesSettings(steps=400, batch_size=16)
    assert epochs_for(s, slices=200, transforms=6) == 5  # 400 x 16 / 1200 = 5.3
    assert epochs_for(s, slices=10_000, transforms=6) == 1


@pytest.mark.slow
def test_crossval_trains_a_slice_stage_and_predicts_through_it(blob_cohort, tmp_path):
    cfg = Seg3DConfig(**{**TINY, "cohort": str(blob_cohort)})
    run = tmp_path / "run"
    table = run_crossval(cfg, run)
    assert len(table) == 8
    folds = sorted((run / "models" / "T1").glob("fold*-rep0"))
    assert len(folds) == 2
    for fold in folds:
        assert fold_done(cfg, fold)
        model = Model.load(fold)
        assert model.slices is not None and model.slices.spec.data.image_size == 32
        assert model.slices.meta["slices"]["gate"] == 0.25
        assert model.slices.meta["seed"] == model.meta["seed"] + 2
        assert set(model.slices.meta["train_patients"]) == set(model.meta["train_patients"])
        assert "slices_wall_s" in (fold / "timing.json").read_text()
    models = find_models(run / "models" / "T1")
    assert len(models) == 2 and all(m.slices is not None for m in models)  # slices/ is not a third member

    image = sitk.ReadImage(str(blob_cohort / "images" / "S00" / "T1.nii.gz"))
    plain = [Model(m.network, m.plan, m.folder, m.meta) for m in models]
    _, p3 = predict_images(plain, [image], cfg.infer)
    p2 = slices_probability([m.slices for m in models], [image])
    assert p2.GetSize() == image.GetSize()
    p2_bf16 = sitk.GetArrayFromImage(slices_probability([m.slices for m in models], [image], bf16=True))
    np.testing.assert_allclose(p2_bf16, sitk.GetArrayFromImage(p2), atol=0.05)  # bfloat16 autocast: close
    # a gate of 0 opens whenever the 3D mask holds something: the mean of both, at the slice threshold
    always = cfg.model_copy(update={"slices": cfg.slices.model_copy(update={"gate": 0.0})})
    for m in models:
        m.slices.meta["slices"] = always.slices.model_dump(mode="json")
    mask, p = predict_images(models, [image], cfg.infer)
    a3, a2, a = (sitk.GetArrayFromImage(x) for x in (p3, p2, p))
    a2 = a2 * nonzero_region([image])  # restricted as the 3D probability is
    if (a3 >= cfg.infer.threshold).any():
        np.testing.assert_allclose(a, 0.5 * a3 + 0.5 * a2, atol=1e-5)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), a >= 0.5)
    else:
        np.testing.assert_array_equal(a, a3)
    # a gate of 1 that the 2D mask does not meet leaves the 3D result
    for m in models:
        m.slices.meta["slices"] = {**always.slices.model_dump(mode="json"), "gate": 1.0}
    if (a3 >= cfg.infer.threshold).any() and coverage(a3 >= cfg.infer.threshold, a2 >= 0.5) < 1.0:
        _, p_closed = predict_images(models, [image], cfg.infer)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(p_closed), a3)

    # an ensemble whose members differ in their stages is refused, not silently run without the slice stage
    with pytest.raises(InputError, match="no slices/ stage while other models"):
        predict_images([plain[0], models[1]], [image], cfg.infer)
    # a slice stage cut short (weights truncated) or unfinished (no model.json) is one error naming it
    weights = folds[0] / SLICES_DIR / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:2000])
    with pytest.raises(InputError, match="truncated|corrupt") as err:
        find_models(run / "models" / "T1")
    assert str(weights) in str(err.value)
    (folds[0] / SLICES_DIR / "model.json").unlink()
    for given in (run / "models" / "T1", folds[0]):  # the run's models, or that fold's folder alone
        with pytest.raises(InputError, match="second stage is not finished") as err:
            find_models(given)
        assert str(folds[0] / SLICES_DIR) in str(err.value)


@pytest.mark.slow
def test_a_run_without_its_slice_stage_trains_only_that_stage(blob_cohort, tmp_path):
    cfg = Seg3DConfig(**{**TINY, "cohort": str(blob_cohort)})
    assert_only_stage_retrained(cfg, tmp_path / "run", SLICES_DIR)
