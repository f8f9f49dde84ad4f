"""`segment transfer-study` keys its run folder by the config, the domains' patients and their cohort content: an
unchanged cohort is trusted; a changed series stops the run, saying which; rerun_changed deletes the results."""

import pandas as pd
import pytest
import SimpleITK as sitk

from sarcomri.runrecord import InputsChangedError
from sarcomri.seg2d.design import check_inputs, resolve_domains

from .test_seg2d_transfer import _config


def test_transfer_run_folder_stops_or_clears_after_a_cohort_change(pair_cohort, tmp_path):
    cfg, run = _config(pair_cohort), tmp_path / "run"
    run.mkdir()
    check_inputs(cfg, resolve_domains(cfg, run), run)
    (run / "models" / "target" / "n003").mkdir(parents=True)
    (run / "splits.csv").write_text("made from the old images")
    check_inputs(cfg, resolve_domains(cfg, run), run)  # unchanged: nothing to say
    assert (run / "splits.csv").exists()

    series = pd.read_csv(pair_cohort / "series.csv", dtype=str)
    row = series[series["sequence"] == "ADC"].iloc[0]
    img = sitk.ReadImage(str(pair_cohort / row["image"]))
    sitk.WriteImage(img * 2, str(pair_cohort / row["image"]), useCompression=True)
    with pytest.raises(InputsChangedError, match=rf"image file\(s\) changed \({row['patient_id']}/ADC\)") as err:
        check_inputs(cfg, resolve_domains(cfg, run), run)
    assert "splits.csv" in str(err.value) and "models" in str(err.value) and (run / "splits.csv").exists()
    check_inputs(cfg, resolve_domains(cfg, run), run, rerun_changed=True)
    assert not (run / "splits.csv").exists() and not (run / "models").exists()
