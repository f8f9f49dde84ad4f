"""`sarcomri demo`: the main job on a freshly synthesised cohort, every stage end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console

from sarcomri import demo as demo_lib
from sarcomri import study as study_lib
from sarcomri.cli.options import QUIET_OPT, out_option
from sarcomri.cli.predict import predict
from sarcomri.predict import FROM_SEGMENTATION_MODEL
from sarcomri.runs import StudyRun
from sarcomri.study_cohort import ROUNDTRIP_KEY


def demo(
    out: Path = out_option(Path("runs/demo"), help="Folder of the demo (stages already there are skipped, so a "
                           "rerun after a crash continues)."),
    patients: int | None = typer.Option(None, "--patients", "-n", min=24,
                                        help="Synthetic patients (sarcoma vs leiomyoma); the preset's by default."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the synthetic cohort and the study seed (the "
                                    "splits and the training of every stage); the preset's (0) by default."),
    quiet: bool = QUIET_OPT,
) -> None:
    """Run the demo study: synthesise a uterine sarcoma vs leiomyoma cohort, write it as DICOM and ingest it
    back de-identified, train per-sequence CNNs over folds x repeats, ensemble them, vote over sequences and
    search the combinations, compare with synthetic radiologists reading with and without the AI, train a 3D
    tumour segmentation model, write the HTML report, let the synthetic radiologists read the study's cases through
    the reader workstation, then predict one new patient from DICOM."""
    con = Console()
    t0 = time.perf_counter()
    cfg = demo_lib.demo_config(patients, seed)
    con.rule(f"demo study ({cfg.synth.patients} synthetic patients)")
    study = StudyRun(out / "study")
    study_lib.run_study(cfg, study.path, log=Console(quiet=quiet).print, progress=not quiet)
    con.rule("reader study")
    demo_lib.reader_study(study, Console(quiet=quiet).print)
    con.rule("one new patient")
    folder, label = demo_lib.new_patient(out / "new-patient", cfg, Console(quiet=quiet).print, study=study)
    seg = study.segmentation.path if cfg.segmentation is not None else None
    predict(folder, model=study.classification.path, segmentation_model=seg,
            out=out / "new-patient" / "prediction", deid_key=ROUNDTRIP_KEY, gradcam=True, overwrite=True,
            verbose=False, study_uid=None, push=None, reidentify=False, summary_image=False, timeout=30.0, retries=4,
            quiet=quiet, as_json=False)
    result = json.loads((out / "new-patient" / "prediction" / "result.json").read_text())
    con.print(f"truth, for the demo only: {label}; the decision was {result['decision']}")
    source = str(result.get("mask_source", ""))
    if seg is not None and source.startswith(FROM_SEGMENTATION_MODEL):
        seq = source.removeprefix(FROM_SEGMENTATION_MODEL)
        m = demo_lib.mask_against_truth(out / "new-patient", out / "new-patient" / "prediction" / "mask.nii.gz", seq)
        con.print(f"the segmentation model's mask against the synthetic truth ({seq}): Dice {m['dice']:.2f}, "
                  f"HD95 {m['hd95_mm']:.1f} mm, volume {m['predicted_ml']:.1f} mL (true {m['true_ml']:.1f} mL)")
    con.rule("done")
    con.print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    con.print(f"study report: {study.report_html.resolve()}")
    con.print(f"new patient:  {(out / 'new-patient' / 'prediction' / 'report.html').resolve()}")
