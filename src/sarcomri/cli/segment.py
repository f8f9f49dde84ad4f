"""`sarcomri segment`: 3D tumour segmentation (train by patient-level cross-validation, predict, evaluate),
and `sarcomri export nnunet` (an nnU-Net v2 raw dataset with patient-grouped splits)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from sarcomri.cli.console import print_table, training_progress
from sarcomri.cli.options import COHORT_OPT, QUIET_OPT, RUN_DIR_OPT, RUNS_OPT, emit_json, json_option, out_option
from sarcomri.cohort.sequences import group_name, parse_group
from sarcomri.errors import InputError
from sarcomri.runs import SegmentationRun

app = typer.Typer(help="3D tumour segmentation on MRI (e.g. soft-tissue sarcoma): an nnU-Net-style plan "
                       "(spacing, patch, DynUNet) scaled to the machine, patient-level cross-validation, "
                       "sliding-window inference, Dice/F2/ASSD/HD95.", no_args_is_help=True)


@app.command("train")
def train(
    config: Path = typer.Argument(..., help="3D segmentation config YAML: configs/seg3d-cpu.yaml (CPU), "
                                  "configs/seg3d-gpu.yaml (nnU-Net-sized)."),
    runs: Path = RUNS_OPT,
    run_dir: Path | None = RUN_DIR_OPT,
    cohort: Path | None = COHORT_OPT,
    quiet: bool = QUIET_OPT,
    rerun_changed: bool = typer.Option(False, "--rerun-changed", help="When the cohort changed since the run "
                                       "folder was made: delete and recompute the splits, models and masks the "
                                       "change affects (by default the run stops and says what changed)."),
    engine: str | None = typer.Option(None, "--engine", help="sarcomri (the DynUNet of this package) or nnunet "
                                      "(nnU-Net v2: plan, preprocess and train the run's folds with nnUNetv2_train, "
                                      "on the GPU when train.device allows; needs pip install 'sarcomri\\[nnunet]'). "
                                      "Default: the config's engine."),
    final: bool = typer.Option(False, "--final", help="Also train one model on every patient "
                               "(models/<seq>/final/, like `final: true` in the config): the model `segment "
                               "predict RUN/models/<seq>` and `sarcomri predict` then use for new patients."),
    as_json: bool = json_option("run_dir, per_case_table (path), per_case (list of {case, sequence, fold, dice, "
                                "f2, assd_mm, hd95_mm, ...}), per_sequence (median (IQR) rows), per_fold; with "
                                "--engine nnunet: run_dir, models (list of {sequences, dataset, model_folder, "
                                "folds})"),
) -> None:
    """Patient-level k-fold cross-validation: per fold, plan from the training patients, train a DynUNet
    (Dice + cross-entropy), predict the held-out patients; then the per-case Dice, F2, ASSD and HD95 table
    (tables/per_case.csv) and the medians (IQR) per sequence. Finished folds are skipped on a rerun. With
    --engine nnunet, nnU-Net v2 trains on the same cohort and folds (the model folders are printed: give one to
    `segment predict`)."""
    from sarcomri.config import load_config
    from sarcomri.seg3d.config import Seg3DConfig
    from sarcomri.seg3d.crossval import run_crossval

    cfg = load_config(config, Seg3DConfig)
    if cohort is not None:
        cfg.cohort = str(cohort.resolve())
    if final:
        cfg.final = True
    if engine is not None:
        if engine not in ("sarcomri", "nnunet"):
            raise InputError(None, f"--engine {engine!r}: choose sarcomri or nnunet")
        cfg.engine = engine  # type: ignore[assignment]
    if cfg.engine == "nnunet":
        _train_nnunet(cfg, run_dir if run_dir is not None else runs / f"{cfg.name}-nnunet", quiet, as_json)
        return
    out = run_dir if run_dir is not None else runs / cfg.name
    con = Console()
    if quiet or as_json:
        per_case = run_crossval(cfg, out, rerun_changed=rerun_changed)
    else:
        with training_progress(con) as bar:
            per_case = run_crossval(cfg, out, _train_progress(con, bar), rerun_changed=rerun_changed)
    from sarcomri.seg3d.crossval import per_fold
    from sarcomri.seg3d.evaluate import paper_table

    if as_json:
        emit_json({"run_dir": str(out), "per_case_table": str(SegmentationRun(out).table_path("per_case")),
                   "per_case": per_case, "per_sequence": paper_table(per_case), "per_fold": per_fold(per_case)})
        return
    _report(con, per_case)
    print_table(con, per_fold(per_case), "Per fold (HD95 in mm)")
    timing = SegmentationRun(out).table_path("timing")
    if timing.is_file():
        t = pd.read_csv(timing)
        cols = [c for c in ("train_wall_s", "train_cpu_s", "predict_wall_s", "predict_cpu_s") if c in t.columns]
        if cols:
            con.print("folds, summed: " + ", ".join(f"{c} {t[c].sum():.0f}" for c in cols), highlight=False)
    con.print(f"[green]per-case table:[/] {escape(str(SegmentationRun(out).table_path('per_case')))}")


def _train_nnunet(cfg: Any, out: Path, quiet: bool, as_json: bool) -> None:
    from sarcomri.seg3d.nnunet_engine import train_nnunet

    con = Console(highlight=False, quiet=quiet or as_json)
    models = train_nnunet(cfg, out, progress=lambda msg: con.print(escape(msg)))
    if as_json:
        emit_json({"run_dir": str(out), "models": [
            {"sequences": group_name(m.sequences), "dataset": str(m.dataset), "model_folder": str(m.model_folder),
             "folds": m.folds} for m in models]})
        return
    for m in models:
        con.print(f"[green]nnU-Net model ({group_name(m.sequences)}, folds {', '.join(map(str, m.folds))}):[/] "
                  f"{escape(str(m.model_folder))}")
    con.print("out-of-fold predictions: fold_<k>/validation/ of each model folder (`sarcomri segment evaluate "
              "FOLDER COHORT --dataset DATASET` scores them)")


def _train_progress(con: Console, bar: Progress) -> Callable[[dict], None]:
    """The progress callback of ``segment train``: a line per fold's plan, a bar per fold, a line per case."""
    state: dict = {}

    def progress(e: dict) -> None:
        if e["event"] == "fold_start":
            p = e["plan"]
            con.print(f"{e['model']} fold {e['fold']}: spacing {p.target_spacing} mm, patch "
                      f"{p.patch_size}, filters {p.filters}, batch {p.batch_size}", highlight=False)
            state["task"] = bar.add_task(f"{e['model']} fold {e['fold']}", total=e["steps"], loss="-")
        elif e["event"] == "slices_start":
            con.print(f"{e['model']} fold {e['fold']}: {e['slices']} training slices", highlight=False)
            state["task"] = bar.add_task(f"{e['model']} fold {e['fold']}", total=e["steps"], loss="-")
        elif e["event"] == "step" and "task" in state:
            bar.update(state["task"], advance=1, loss=f"{e['loss']:.3f}")
        elif e["event"] == "predicted":
            con.print(f"  predicted {e['patient_id']}", highlight=False)
        elif e["event"] == "fold_done":
            con.print(f"{e['model']} fold {e['fold']}: trained and predicted (worker process)", highlight=False)

    return progress


def _report(con: Console, per_case: pd.DataFrame) -> None:
    from sarcomri.seg3d.evaluate import paper_table

    cols = ["case", "sequence"] + (["fold"] if "fold" in per_case.columns else []) + \
        ["dice", "f2", "assd_mm", "hd95_mm", "empty_pred"] + [c for c in ("both_empty",) if c in per_case.columns]
    print_table(con, per_case[cols], "Per case (HD95, ASSD in mm)")
    print_table(con, paper_table(per_case), "Median (IQR) per sequence")
    means = per_case.groupby("sequence")[["dice", "hd95_mm"]].mean().reset_index()
    print_table(con, means.rename(columns={"dice": "mean Dice", "hd95_mm": "mean HD95 (mm)"}), "Means")


@app.command("predict")
def predict(
    model: Path = typer.Argument(..., help="A model folder (models/<seq>/fold<k>-rep0), or a folder holding "
                                 "several (their tumour probabilities are averaged: a fold ensemble), or a trained "
                                 "nnU-Net model folder (<results>/Dataset<ID>_<Name>/<trainer>__<plans>__<config>/: "
                                 "its folds averaged, its channels the sequences named in its dataset.json)."),
    inputs: list[Path] = typer.Argument(..., help="One patient: NIfTI image(s) or DICOM series folder(s), one per "
                                        "input sequence in the model's order; or one cohort folder (every patient "
                                        "with those sequences)."),
    out: Path = out_option(..., help="Folder for <case>.nii.gz masks on each input's own grid."),
    probabilities: bool = typer.Option(False, help="Also write <case>_prob.nii.gz (tumour probability)."),
    dicom_seg: bool = typer.Option(True, help="When the input is a DICOM series: also write <case>_seg.dcm, the "
                                   "mask as a DICOM-SEG referencing that series."),
    overlap: float | None = typer.Option(None, help="Sliding-window overlap (Gaussian-weighted windows). Default: "
                                         "the model's training config (0.5 for nnU-Net and 2D models)."),
    mirror: bool | None = typer.Option(None, "--mirror/--no-mirror", help="Average over the 8 flips along z, y, "
                                       "x (test-time mirroring). Default: the model's training config (on for "
                                       "nnU-Net)."),
    largest_component: bool | None = typer.Option(None, "--largest-component/--no-largest-component",
                                                  help="Keep only the largest connected tumour component. "
                                                  "Default: the model's training config (on for nnU-Net and 2D "
                                                  "models)."),
    restrict_to_nonzero: bool | None = typer.Option(None, "--restrict-to-nonzero/--no-restrict-to-nonzero",
                                                    help="3D models normalised over non-zero voxels: no tumour in "
                                                    "the zero padding around the image. Default: the model's "
                                                    "training config."),
    threads: int | None = typer.Option(None, help="PyTorch CPU threads (default: PyTorch's; 1 is the most "
                                       "efficient on a small CPU that other processes share)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace masks already in --out (checked for every "
                                   "case before any work)."),
    quiet: bool = QUIET_OPT,
) -> None:
    """Segment the tumour: masks (0 background, 1 tumour) on the input image's grid (same origin, spacing,
    direction and size), and a DICOM-SEG when the input is a DICOM series. The model is a 3D model (or a
    folder of them: a fold ensemble) or a 2D model of a transfer study (``models/<model>/n<k>``)."""
    import SimpleITK as sitk

    from sarcomri.io.atomic import atomic_path, check_writable
    from sarcomri.seg2d.config import InferSettings2D
    from sarcomri.seg2d.infer import Segmenter, is_2d_model, segment_patient_2d
    from sarcomri.seg3d.infer import find_models
    from sarcomri.seg3d.nnunet_engine import is_nnunet_model_folder
    from sarcomri.seg3d.predict import PatientSegmentation, model_settings, segment_patient

    if is_nnunet_model_folder(model):
        from sarcomri.seg3d.nnunet_engine import NnunetSegmenter, channel_names

        seqs = channel_names(model)  # checked against the inputs before the model is loaded
        loaded: dict[str, NnunetSegmenter] = {}

        def segment(images: dict, case: str) -> PatientSegmentation:
            if "model" not in loaded:
                loaded["model"] = NnunetSegmenter(model, overlap=_given(overlap, 0.5), mirror=_given(mirror, True),
                                                  largest_component=_given(largest_component, True))
            return loaded["model"].segment(images, case)
    elif is_2d_model(model):
        segmenter = Segmenter.load(model)
        seqs = list(segmenter.data.sequences)
        settings_2d = InferSettings2D(largest_component=_given(largest_component, True))

        def segment(images: dict, case: str) -> PatientSegmentation:
            return segment_patient_2d(segmenter, images, settings_2d, case_id=case)
    else:
        inner = sorted(p.parent for p in model.glob("*/plans.json") if is_nnunet_model_folder(p.parent))
        if inner:
            raise InputError(model, "holds nnU-Net model folders: give one of them ("
                                    f"{', '.join(p.name for p in inner)})")
        models = find_models(model)
        seqs = models[0].plan.sequences
        given = {"overlap": overlap, "mirror": mirror, "largest_component": largest_component,
                 "restrict_to_nonzero": restrict_to_nonzero, "threads": threads}
        settings = model_settings(models).model_copy(update={k: v for k, v in given.items() if v is not None})

        def segment(images: dict, case: str) -> PatientSegmentation:
            return segment_patient(models, images, settings, case_id=case)
    con = Console(highlight=False, quiet=quiet)
    jobs, source = _predict_jobs(inputs, list(seqs))
    for case, _ in jobs:  # every output checked before any work
        for name in (f"{case}.nii.gz", f"{case}_prob.nii.gz", f"{case}_seg.dcm"):
            check_writable(out / name, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    for case, read in jobs:
        result = segment(read(), case)
        with atomic_path(out / f"{case}.nii.gz", overwrite=overwrite) as tmp:
            sitk.WriteImage(result.mask, str(tmp), useCompression=True)
        if probabilities:
            with atomic_path(out / f"{case}_prob.nii.gz", overwrite=overwrite) as tmp:
                sitk.WriteImage(result.probability, str(tmp), useCompression=True)
        con.print(f"{case}: tumour {result.volume_ml:.1f} mL -> {out / (case + '.nii.gz')}")
        if source is not None and dicom_seg:
            from sarcomri.io.dicomseg import write_dicom_seg

            seg = write_dicom_seg(result.mask, source, out / f"{case}_seg.dcm",
                                  series_description=f"sarcomri tumour ({group_name(seqs)})", overwrite=overwrite)
            con.print(f"{case}: DICOM-SEG -> {seg}")


def _given(value: Any, default: Any) -> Any:
    """An option's value, or ``default`` when it was not given."""
    return default if value is None else value


def _predict_jobs(inputs: list[Path], seqs: list[str]) -> tuple[list[tuple[str, Callable[[], dict]]], Any]:
    """The cases of ``segment predict``: (case id, a reader of its images by sequence) for every patient of a
    cohort folder, or the one patient of the given images; and the DICOM series to reference (else None)."""
    import SimpleITK as sitk

    from sarcomri.cohort.manifest import Cohort
    from sarcomri.seg3d.data import patients_with, read_channels

    source = None
    if len(inputs) == 1 and (inputs[0] / "cohort.json").is_file():
        cohort = Cohort.load(inputs[0])
        absent = [s for s in seqs if s not in cohort.sequences]
        if absent:
            raise InputError(inputs[0], f"the model's input channels are {group_name(seqs)}; the cohort has no "
                                        f"{', '.join(absent)} (its sequences: {', '.join(cohort.sequences)})")
        pids = patients_with(cohort, seqs, need_mask=False)
        if not pids:
            raise InputError(inputs[0], f"no patient has the model's sequences {group_name(seqs)}")
        jobs = [(pid, lambda pid=pid: dict(zip(seqs, read_channels(cohort, pid, seqs)[0], strict=True)))
                for pid in pids]
    else:
        if len(inputs) != len(seqs):
            raise InputError(inputs[0], f"the model takes {len(seqs)} sequence(s) ({group_name(seqs)}); "
                                        f"give one image per sequence, got {len(inputs)}")
        if inputs[0].is_dir():
            from sarcomri.io.dicomseg import load_series

            source = load_series(inputs[0])
            first: sitk.Image | Path = source.image
        else:
            first = inputs[0]
        stem = inputs[0].name.split(".")[0]
        jobs = [(stem, lambda: {seqs[0]: first, **dict(zip(seqs[1:], inputs[1:], strict=True))})]
    return jobs, source


@app.command("evaluate")
def evaluate(
    pred_dir: Path = typer.Argument(..., help="Folder of predicted masks <case>.nii.gz (sarcomri or nnU-Net "
                                    "predictions; case = patient id, or <patient>_<sequence>)."),
    cohort: Path = typer.Argument(..., help="Cohort folder holding the reference (manual) masks."),
    sequence: str | None = typer.Option(None, help="Sequence whose masks are the reference (default: the only "
                                        "one with masks); 'T1+T2' labels a two-channel model."),
    by: list[str] = typer.Option([], "--by", help="Also summarise by these columns of the table or of "
                                 "patients.csv (site, histology, center, label...)."),
    dataset: Path | None = typer.Option(None, "--dataset", help="The nnU-Net dataset folder written by `sarcomri "
                                        "export nnunet` (or its cases.csv / dataset.json): maps nnU-Net case names "
                                        "back to patients. Found by itself when dataset.json lies in PRED_DIR."),
    out: Path | None = out_option(None, help="Write the per-case table to this CSV."),
    summary_out: Path | None = typer.Option(None, "--summary", help="Write the summaries (median, IQR, mean, n per "
                                            "metric, per sequence and per --by column) to this CSV."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing --out / --summary files."),
    as_json: bool = json_option("per_case (list of {case, sequence, dice, f2, sensitivity, precision, assd_mm, "
                                "hd95_mm, ...}), summary (list of {stratum, value, sequence, metric, n, median, q1, "
                                "q3, mean, ...}), out, summary_out (paths written, or null)"),
) -> None:
    """Per-case Dice, F2, sensitivity, precision, ASSD and HD95 (mm) against the reference masks; medians
    (IQR) per sequence and per stratum. Distances are summarised over cases with both masks non-empty."""
    from sarcomri.cohort.manifest import Cohort
    from sarcomri.io.atomic import check_writable, write_csv
    from sarcomri.seg3d.evaluate import evaluate_folder, summarise_by

    for target in (out, summary_out):
        if target is not None:
            check_writable(target, overwrite=overwrite)
    co = Cohort.load(cohort)
    per_case = evaluate_folder(pred_dir, co, sequence, cases=dataset)
    con = Console(quiet=as_json)  # with --json, stdout holds the JSON only
    _report(con, per_case)
    metrics = ["dice", "f2", "assd_mm", "hd95_mm"]
    summaries = [summarise_by(per_case, ["sequence"], co.patients, metrics).assign(stratum="sequence")
                 .rename(columns={"sequence": "value"})]
    for col in by:
        summary = summarise_by(per_case, ["sequence", col], co.patients, metrics)
        print_table(con, summary[["sequence", col, "metric", "n", "median", "q1", "q3"]], f"By {col}")
        summaries.append(summary.assign(stratum=col).rename(columns={col: "value"}))
    if out is not None:
        write_csv(out, per_case, overwrite=overwrite)
        con.print(f"[green]per-case table:[/] {escape(str(out))}")
    table = pd.concat(summaries, ignore_index=True)
    if "sequence" in table.columns:  # with --by: the per-stratum rows keep their sequence
        table["sequence"] = table["sequence"].where(table["stratum"] != "sequence", table["value"])
    else:  # without --by the only summary is per sequence
        table["sequence"] = table["value"]
    front = ["stratum", "value", "sequence", "metric"]
    table = table[front + [c for c in table.columns if c not in front]]
    if summary_out is not None:
        write_csv(summary_out, table, overwrite=overwrite)
        con.print(f"[green]summary:[/] {escape(str(summary_out))}")
    if as_json:
        emit_json({"per_case": per_case, "summary": table, "out": None if out is None else str(out),
                   "summary_out": None if summary_out is None else str(summary_out)})


@app.command("plan")
def plan(
    cohort: Path = typer.Argument(..., help="Cohort folder."),
    sequences: str = typer.Option(..., "--sequences", help="Input sequence(s), e.g. T1 or T1+T2."),
    preset: str = typer.Option("cpu", help="Planner preset: cpu (small, coarser grid) or gpu (nnU-Net-sized)."),
) -> None:
    """Print the plan the cohort's fingerprint gives (target spacing, patch, DynUNet strides and kernels)."""
    import json
    from dataclasses import asdict

    from sarcomri.cohort.manifest import Cohort
    from sarcomri.seg3d.config import PRESETS, PlanSettings
    from sarcomri.seg3d.data import cohort_fingerprint, patients_with
    from sarcomri.seg3d.plan import make_plan

    if preset not in PRESETS:
        raise InputError(None, f"unknown preset {preset!r} (choose {', '.join(PRESETS)})")
    co = Cohort.load(cohort)
    group = list(parse_group(sequences))
    pids = patients_with(co, group)
    if not pids:
        raise InputError(cohort, f"no patient has {sequences} with a mask")
    p = make_plan(cohort_fingerprint(co, pids, group), group, PlanSettings(**PRESETS[preset]))
    typer.echo(json.dumps(asdict(p), indent=2))
