"""`sarcomri export`: a cohort for other tools; ``export nnunet`` writes an nnU-Net v2 raw dataset with patient-grouped
splits (or a segmentation run's own folds)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from sarcomri.cli.options import out_option
from sarcomri.cohort.sequences import parse_group
from sarcomri.errors import InputError
from sarcomri.runs import SegmentationRun


def export_nnunet(
    cohort: Path | None = typer.Argument(None, help="Cohort folder to export (with --folds-from: the run's cohort, "
                                         "which may be left out)."),
    out: Path = out_option(..., help="nnUNet_raw folder; Dataset<ID>_<NAME>/ is created in it."),
    dataset_id: int = typer.Option(..., "--id", help="nnU-Net dataset id (1-999; use 500+ for your own). With "
                                   "--folds-from and several models: the first id, one per model."),
    name: str = typer.Option(..., "--name", help="Dataset name, e.g. STST1 (with --folds-from and several models: "
                             "<NAME>_<seq>-<seq>)."),
    sequences: str | None = typer.Option(None, "--sequences", help="Sequences, e.g. T1 or T1+T2 (channels of one "
                                         "case); required without --folds-from, where it defaults to every model "
                                         "of the run."),
    layout: str = typer.Option("channels", help="channels: one case per patient, sequences as channels; cases: "
                               "one single-channel case per patient and sequence."),
    numbered: bool = typer.Option(False, "--numbered", help="Name cases <NAME>_0001, <NAME>_0002, ... (nnU-Net's "
                                  "usual naming) instead of by patient; cases.csv and dataset.json map them back."),
    folds: int = typer.Option(5, help="Patient-grouped folds written to splits_final.json."),
    seed: int = typer.Option(0, help="Seed of the folds."),
    folds_from: Path | None = typer.Option(None, "--folds-from", help="A 3D segmentation run folder (`segment "
                                           "train`, a study's segmentation/): export its cohort once per model "
                                           "with splits_final.json = the run's own cross-validation folds "
                                           "(--folds, --seed and --layout do not apply)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset folder."),
) -> None:
    """Export a cohort as an nnU-Net v2 raw dataset (dataset.json, imagesTr/<case>_0000.nii.gz,
    labelsTr/<case>.nii.gz) with splits_final.json holding PATIENT-grouped folds (or, with --folds-from, the
    folds of a segmentation run); copy it to nnUNet_preprocessed/Dataset<ID>_<NAME>/ after
    nnUNetv2_plan_and_preprocess."""
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.io.nnunet import export_nnunet as run_export
    from sarcomri.io.nnunet import export_run_folds

    case_names = "numbered" if numbered else "patient"
    if folds_from is not None:
        run_cohort = SegmentationRun(folds_from).cohort_dir
        if cohort is not None and cohort.resolve() != run_cohort.resolve():
            raise InputError(cohort, f"is not the cohort of the run {folds_from} ({run_cohort}): leave it out")
        results = export_run_folds(folds_from, out, dataset_id, name, sequences, case_names=case_names,  # type: ignore[arg-type]
                                   overwrite=overwrite)
    else:
        if cohort is None or sequences is None:
            raise InputError(None, "name the COHORT and --sequences (or export a run's folds with --folds-from RUN)")
        results = [run_export(Cohort.load(cohort), out, dataset_id, name, list(parse_group(sequences)),
                              layout=layout, case_names=case_names, n_folds=folds, seed=seed,  # type: ignore[arg-type]
                              overwrite=overwrite)]
    con = Console(highlight=False)
    for res in results:
        if res.skipped:
            con.print(f"note: {len(res.skipped)} patient(s) left out (no mask or a missing sequence)")
        con.print(f"[green]nnU-Net dataset written:[/] {escape(str(res.folder))} ({len(res.cases)} cases, "
                  f"{res.cases['patient_id'].nunique()} patients, {len(res.splits)} patient-grouped folds in "
                  f"splits_final.json{' from ' + escape(str(folds_from)) if folds_from else ''})")


