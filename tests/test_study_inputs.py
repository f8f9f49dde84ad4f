"""A study's inputs. `study run`: every stage that reads the cohort has the cohort's content in its key, so a
changed label reruns those stages (their folders cleared first) and an unchanged cohort skips them (the stages'
bodies are stubs there: what is tested is the ledger's decision). Then the stratified sample (``patients``), the
cohort stage on a folder, a source to ingest or a synthetic cohort, the radiologists' reads checked against the
cohort, the config file's paths, the grid's class gaps and ``sarcomri synth --task sts``."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from typer.testing import CliRunner

from sarcomri import study
from sarcomri.cli.main import app
from sarcomri.cohort.manifest import Cohort
from sarcomri.cohort.sample import sample_ids, write_sample
from sarcomri.config import SynthSource
from sarcomri.errors import InputError
from sarcomri.runs import StudyRun
from sarcomri.stages import run_stages
from sarcomri.study_cohort import cohort_dir as study_cohort_dir
from sarcomri.study_cohort import cohort_stage, make_cohort, source_listing
from sarcomri.study_config import StudyConfig, load_study_config
from sarcomri.synth.cohort import synthesise_cohort
from sarcomri.train.grid import class_gaps


def _stubbed(cfg, run, calls):
    out = study.stages(cfg, run, log=lambda m: None)
    for st in out:
        def body(st=st):
            calls.append(st.name)
            for o in st.outputs:
                (run / o).parent.mkdir(parents=True, exist_ok=True)
                (run / o).write_text("x")
        st.run = body
    return out


def test_a_changed_cohort_reruns_the_stages_that_read_it(tiny_cohort, tmp_path):
    cfg = StudyConfig(name="s", cohort=str(tiny_cohort), classification={"sequences": ["T2axi"]},
                      segmentation={"sequences": ["T2axi"]}, report=True)
    run = tmp_path / "run"
    calls = []
    assert set(run_stages(run, _stubbed(cfg, run, calls), log=lambda m: None).values()) == {"ran"}
    calls.clear()
    assert set(run_stages(run, _stubbed(cfg, run, calls), log=lambda m: None).values()) == {"skipped"}
    (run / "classification" / "stale.txt").write_text("made from the old labels")

    table = pd.read_csv(tiny_cohort / "patients.csv", dtype=str)
    table.loc[table["patient_id"] == "P006", "label"] = "sarcoma"
    table.to_csv(tiny_cohort / "patients.csv", index=False)
    status = run_stages(run, _stubbed(cfg, run, calls), log=lambda m: None)
    assert status == {"cohort": "skipped", "classification": "ran", "segmentation": "ran", "report": "ran"}
    assert not (run / "classification" / "stale.txt").exists()


TINY = SynthSource(size=32, slices=8).protocol()


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    """A tiny synthetic sarcoma cohort: 12 patients (3 sarcomas), T2axi only, with its readers.csv."""
    folder = tmp_path_factory.mktemp("full") / "cohort"
    synthesise_cohort(folder, task="sarcoma", n_patients=12, seed=3, sequences=["T2axi"], protocol=TINY)
    return folder


def _quiet(_text: str) -> None:
    pass


def _patients(n: int, positives: int) -> pd.DataFrame:
    labels = ["sarcoma"] * positives + ["leiomyoma"] * (n - positives)
    return pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)], "label": labels})


# -- cohort.sample -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_sample_ids_keeps_the_class_proportions(seed):
    patients = _patients(40, 8)
    ids = sample_ids(patients, 10, seed=seed)
    assert len(ids) == 10 and len(set(ids)) == 10
    positives = set(patients.loc[patients["label"] == "sarcoma", "patient_id"])
    assert len(positives & set(ids)) == 2  # 8/40 of 10
    order = patients["patient_id"].tolist()
    assert ids == sorted(ids, key=order.index)  # in the cohort's order


def test_sample_ids_is_seeded_and_returns_all_when_small():
    patients = _patients(40, 8)
    assert sample_ids(patients, 10, seed=4) == sample_ids(patients, 10, seed=4)
    assert len({tuple(sample_ids(patients, 10, seed=s)) for s in range(6)}) > 1
    assert sample_ids(patients, 40) == patients["patient_id"].tolist()
    assert sample_ids(patients, 100, seed=9) == patients["patient_id"].tolist()


def test_sample_ids_keeps_every_class_when_n_allows():
    for seed in range(20):
        assert "P000" in sample_ids(_patients(40, 1), 20, seed=seed)  # the only positive
        assert {"P000", "P001", "P002"} & set(sample_ids(_patients(40, 3), 10, seed=seed))


def test_write_sample_writes_a_valid_cohort_of_the_kept_patients(cohort_dir, tmp_path):
    full = Cohort.load(cohort_dir)
    ids = sample_ids(full.patients, 5, seed=1)
    out = write_sample(full, ids, tmp_path / "sample")
    part = Cohort.load(out)  # validates the tables and the files
    assert part.patient_ids == ids
    assert part.patients.set_index("patient_id")["label"].to_dict() == (
        full.patients.set_index("patient_id").loc[ids, "label"].to_dict())
    for pid in ids:
        a, b = part.read_image(pid, "T2axi"), full.read_image(pid, "T2axi")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
        assert a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(part.read_mask(pid, "T2axi")),
                                      sitk.GetArrayFromImage(full.read_mask(pid, "T2axi")))
    meta = json.loads((out / "cohort.json").read_text())
    assert meta["sample"] == {"patients": 5, "of": 12}
    assert meta["task"] == "sarcoma" and part.positive_label == "sarcoma"
    reads = pd.read_csv(out / "readers.csv", dtype={"patient_id": str})
    source = pd.read_csv(cohort_dir / "readers.csv", dtype={"patient_id": str})
    assert set(reads["patient_id"]) == set(ids)
    assert len(reads) == source["patient_id"].isin(ids).sum() > 0
    with pytest.raises(InputError, match="at least one patient"):
        write_sample(full, [], tmp_path / "empty")


# -- the cohort stage --------------------------------------------------------------------------------------------


def test_a_study_with_patients_runs_on_a_sample_of_its_cohort(cohort_dir, tmp_path):
    cfg = StudyConfig.model_validate({"name": "pilot", "cohort": str(cohort_dir), "patients": 6})
    assert cfg.samples()
    run = study.open_study(cfg, tmp_path / "run")
    assert run_stages(run, [cohort_stage(cfg, run, _quiet, progress=False)], _quiet) == {"cohort": "ran"}
    sample = StudyRun(run, cfg).cohort_dir
    assert sample == run / "sample" and study_cohort_dir(cfg, run) == sample
    part = Cohort.load(sample)
    assert len(part.patients) == 6 and part.meta["sample"] == {"patients": 6, "of": 12}
    assert (part.patients["label"] == "sarcoma").sum() == 2  # 3 of 12 sarcomas: 1.5 of 6, here 2
    assert part.patient_ids == sample_ids(Cohort.load(cohort_dir).patients, 6, seed=cfg.seed)
    # current: skipped; a new size reruns it
    assert run_stages(run, [cohort_stage(cfg, run, _quiet, progress=False)], _quiet) == {"cohort": "skipped"}
    cfg8 = cfg.model_copy(update={"patients": 8})
    assert run_stages(run, [cohort_stage(cfg8, run, _quiet, progress=False)], _quiet) == {"cohort": "ran"}
    assert len(Cohort.load(sample).patients) == 8


def test_a_changed_cohort_folder_is_sampled_again(tmp_path):
    folder = tmp_path / "cohort"
    synthesise_cohort(folder, task="sarcoma", n_patients=12, seed=3, sequences=["T2axi"], protocol=TINY)
    cfg = StudyConfig.model_validate({"name": "pilot", "cohort": str(folder), "patients": 6})
    run = study.open_study(cfg, tmp_path / "run")
    assert run_stages(run, [cohort_stage(cfg, run, _quiet, progress=False)], _quiet) == {"cohort": "ran"}
    pid = Cohort.load(run / "sample").patient_ids[0]
    table = pd.read_csv(folder / "patients.csv", dtype=str)
    flipped = {"sarcoma": "leiomyoma", "leiomyoma": "sarcoma"}
    table.loc[table["patient_id"] == pid, "label"] = table.loc[table["patient_id"] == pid, "label"].map(flipped)
    table.to_csv(folder / "patients.csv", index=False)
    assert run_stages(run, [cohort_stage(cfg, run, _quiet, progress=False)], _quiet) == {"cohort": "ran"}
    now = Cohort.load(run / "sample").patients.set_index("patient_id")["label"]
    assert (now == table.set_index("patient_id")["label"].reindex(now.index)).all()  # the sample's labels are current


def test_a_synthetic_study_ignores_patients(tmp_path):
    cfg = StudyConfig.model_validate({"name": "synthetic", "patients": 4, "report": False,
                                      "synth": {"task": "sarcoma", "patients": 5, "seed": 1, "size": 32, "slices": 8,
                                                "sequences": ["T2axi"]}})
    assert not cfg.samples()
    run = study.open_study(cfg, tmp_path / "run")
    make_cohort(cfg, run, _quiet, progress=False)
    assert StudyRun(run, cfg).cohort_dir == run / "synthetic"
    assert len(Cohort.load(run / "synthetic").patients) == 5  # synth.patients, not the study's
    assert not (run / "sample").exists()


# -- read_reads --------------------------------------------------------------------------------------------------


def test_read_reads_checks_columns_and_patients(cohort_dir, tmp_path):
    cohort = Cohort.load(cohort_dir)
    reads = pd.read_csv(cohort_dir / "readers.csv", dtype={"patient_id": str})
    ok = study.read_reads(cohort_dir / "readers.csv", cohort)
    assert len(ok) == len(reads) and list(ok.columns[:6]) == list(reads.columns[:6])

    path = tmp_path / "reads.csv"
    reads.drop(columns="confidence").to_csv(path, index=False)
    with pytest.raises(InputError, match="confidence"):
        study.read_reads(path, cohort)

    extra = reads.iloc[:2].assign(patient_id=["OTHER-1", "OTHER-2"])
    pd.concat([reads, extra]).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"2 patient\(s\) not in the cohort"):
        study.read_reads(path, cohort)


def test_read_reads_of_a_sampled_cohort_drops_the_other_patients(cohort_dir, tmp_path):
    full = Cohort.load(cohort_dir)
    ids = sample_ids(full.patients, 4, seed=0)
    part = Cohort.load(write_sample(full, ids, tmp_path / "sample"))
    got = study.read_reads(cohort_dir / "readers.csv", part)  # the full cohort's reads
    reads = pd.read_csv(cohort_dir / "readers.csv", dtype={"patient_id": str})
    assert set(got["patient_id"]) == set(ids)
    assert len(got) == reads["patient_id"].isin(ids).sum() < len(reads)
    pd.testing.assert_frame_equal(got, reads[reads["patient_id"].isin(ids)].reset_index(drop=True),
                                  check_dtype=False)


# -- load_study_config -------------------------------------------------------------------------------------------


def _write_yaml(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content))
    return path


def test_load_study_config_cohort_option_replaces_synth_and_source(cohort_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write_yaml(tmp_path / "cfg" / "study.yaml",
                       {"name": "s", "synth": {"task": "sarcoma", "patients": 8}, "patients": 6})
    cfg = load_study_config(path, cohort=os.path.relpath(cohort_dir, tmp_path))
    assert cfg.synth is None and cfg.source is None
    assert cfg.cohort == str(cohort_dir.resolve()) and cfg.samples()
    path = _write_yaml(tmp_path / "cfg" / "source.yaml", {"name": "s", "source": {"folder": "dicom"}})
    cfg = load_study_config(path, cohort=cohort_dir, reads=cohort_dir / "readers.csv")
    assert cfg.source is None and cfg.cohort == str(cohort_dir.resolve())
    assert cfg.readers.reads == str((cohort_dir / "readers.csv").resolve())


def test_load_study_config_resolves_relative_paths_against_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the file's folder
    folder = tmp_path / "configs" / "site"
    path = _write_yaml(folder / "study.yaml", {
        "name": "s", "source": {"folder": "../export", "labels": "export/labels.csv", "positive": "sarcoma"},
        "readers": {"reads": "reads/readers.csv"}})
    cfg = load_study_config(path)
    assert cfg.source.folder == str((tmp_path / "configs" / "export").resolve())
    assert cfg.source.labels == str((folder / "export" / "labels.csv").resolve())
    assert cfg.readers.reads == str((folder / "reads" / "readers.csv").resolve())
    absolute = str(tmp_path / "abs")
    cfg = load_study_config(_write_yaml(folder / "abs.yaml", {"name": "s", "source": {"folder": absolute}}))
    assert cfg.source.folder == absolute and cfg.source.labels is None


def test_load_study_config_refuses_cohort_and_synth(tmp_path):
    path = _write_yaml(tmp_path / "study.yaml", {"name": "s", "cohort": "c", "synth": {"patients": 8}})
    with pytest.raises(InputError, match="cohort and synth") as err:
        load_study_config(path)
    assert str(path) in str(err.value)


# -- the source section ------------------------------------------------------------------------------------------


def test_a_source_is_ingested_pseudonymised_and_rerun_when_its_files_change(cohort_dir, tmp_path, monkeypatch):
    from sarcomri.io.deid import Pseudonymizer
    from sarcomri.synth.dicom import write_dicom

    dicom = tmp_path / "dicom"
    write_dicom(Cohort.load(cohort_dir), dicom)
    assert (dicom / "labels.csv").is_file()
    monkeypatch.setenv("SARCOMRI_DEID_KEY", "test-secret")
    cfg = StudyConfig.model_validate({"name": "site", "report": False, "source": {
        "folder": str(dicom), "labels": str(dicom / "labels.csv"), "positive": "sarcoma"}})
    assert not cfg.samples()
    run = study.open_study(cfg, tmp_path / "run")
    messages: list[str] = []
    stage = cohort_stage(cfg, run, messages.append, progress=False)
    assert run_stages(run, [stage], messages.append) == {"cohort": "ran"}
    assert (run / "cohort" / "cohort.json").is_file()
    assert StudyRun(run, cfg).cohort_dir == run / "cohort"
    assert not any("not set" in m for m in messages)  # the key came from the environment
    ingested = Cohort.load(run / "cohort")
    original = Cohort.load(cohort_dir)
    assert len(ingested.patients) == 12
    assert ingested.patients["label"].value_counts().to_dict() == original.patients["label"].value_counts().to_dict()
    text = (run / "cohort" / "patients.csv").read_text()
    assert not any(pid in text for pid in original.patient_ids)
    keyed = Pseudonymizer.from_key("test-secret")  # the key of $SARCOMRI_DEID_KEY
    assert set(ingested.patient_ids) == {keyed(pid) for pid in original.patient_ids}
    first = sorted(ingested.patient_ids)

    # the same key gives the same pseudonyms; the stage is current until a file of the source changes
    assert run_stages(run, [cohort_stage(cfg, run, _quiet, progress=False)], _quiet) == {"cohort": "skipped"}
    labels = dicom / "labels.csv"
    stat = labels.stat()
    os.utime(labels, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert run_stages(run, [cohort_stage(cfg, run, _quiet, progress=False)], _quiet) == {"cohort": "ran"}
    assert sorted(Cohort.load(run / "cohort").patient_ids) == first


def test_source_listing_changes_with_a_file_and_only_then(tmp_path):
    folder = tmp_path / "export"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.dcm").write_bytes(b"0123456789")
    (folder / "labels.csv").write_text("patient_id,label\nP1,sarcoma\n")
    key = source_listing(folder)
    assert len(key) == 16 and source_listing(folder) == key
    (folder / "a" / "1.dcm").read_bytes()  # reading is not a change
    assert source_listing(folder) == key
    path = folder / "a" / "1.dcm"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: mtime only
    touched = source_listing(folder)
    assert touched != key
    path.write_bytes(b"01234567890")  # content (and size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = source_listing(folder)
    assert changed not in (key, touched)
    (folder / "b.dcm").write_bytes(b"")  # a new file
    assert source_listing(folder) not in (key, touched, changed)
    (folder / "empty").mkdir()  # an empty folder is no file
    assert source_listing(folder) == source_listing(folder)


# -- train.grid.class_gaps ---------------------------------------------------------------------------------------


def _splits(rows):
    return pd.DataFrame(rows, columns=["repeat", "fold", "role", "patient_id"])


def test_class_gaps_names_the_fold_without_both_classes():
    labels = pd.Series({"p1": 1, "p2": 0, "p3": 1, "p4": 0})  # the patients with the sequence
    ok = _splits([(0, 0, "train", "p1"), (0, 0, "train", "p2"), (0, 0, "test", "p3"), (0, 0, "test", "p4"),
                  (0, 1, "train", "p3"), (0, 1, "train", "p4"), (0, 1, "test", "p1"), (0, 1, "test", "p2")])
    assert class_gaps(labels, ok) is None
    # repeat 1 fold 1 trains on p1, p3 (positives) and p5 (no series of this sequence)
    gap = pd.concat([ok, _splits([(1, 0, "train", "p1"), (1, 0, "train", "p4"), (1, 0, "val", "p2"),
                                  (1, 1, "train", "p1"), (1, 1, "train", "p3"), (1, 1, "train", "p5"),
                                  (1, 1, "test", "p2"), (1, 1, "test", "p4")])])
    reason = class_gaps(labels, gap)
    assert reason == "repeat 1 fold 1: the 2 training patient(s) with the sequence hold 1 class(es)"
    # a fold whose only negative has no series of the sequence
    assert "repeat 0 fold 0" in class_gaps(labels.drop("p2"), ok)
    # validation and test patients do not count
    assert class_gaps(labels, _splits([(0, 0, "train", "p1"), (0, 0, "train", "p3"), (0, 0, "val", "p2"),
                                       (0, 0, "test", "p4")])).startswith("repeat 0 fold 0: the 2 training")


# -- sarcomri synth --task sts -----------------------------------------------------------------------------------


def test_synth_cli_makes_the_soft_tissue_sarcoma_cohort(tmp_path):
    out = tmp_path / "sts"
    res = CliRunner().invoke(app, ["synth", "--task", "sts", "--patients", "5", "--seed", "1", "--out", str(out),
                                   "--size", "32", "--slices", "8", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["task"] == "sts" and got["patients"] == 5 and got["labels"] == {"tumour": 5}
    cohort = Cohort.load(out)
    assert cohort.meta["task"] == "sts" and set(cohort.sequences) == {"T1", "T2FS", "T1CEFS"}
    assert len(cohort.series) == 15  # every patient has all three sequences
    # exact shares for any cohort size: 5 patients, one of each of the five histologies
    assert set(cohort.patients["histology"]) == {"undifferentiated_pleomorphic_sarcoma", "leiomyosarcoma",
                                                 "myxoid_liposarcoma", "myxofibrosarcoma", "intramuscular_myxoma"}
    assert set(cohort.patients["site"]) <= {"extremity", "trunk", "abdomen", "pelvis"}
    pid = cohort.patient_ids[0]
    grids = {(im.GetSize(), im.GetSpacing(), im.GetOrigin(), im.GetDirection())
             for im in (cohort.read_image(pid, s) for s in ("T1", "T2FS", "T1CEFS"))}
    assert len(grids) == 1  # co-registered on one grid
    assert next(iter(grids))[0] == (32, 32, 8)
    helped = CliRunner().invoke(app, ["synth", "--help"], terminal_width=200)
    assert "sts" in helped.output and "T1CEFS" in helped.output
