"""How close does the demo's classification come to the cohort's ceiling? AUC / ideal-observer AUC (issue 15).

Builds (or reuses, from ``--work``) the synthetic cohort of the config's ``synth`` section with ``--seed`` in place
of its seed, trains the config's grid on it in a fresh run folder under ``--work`` and prints, per sequence and for
the patient-level mean over the sequences (``combined``, the decision the ratio is taken on), the AUC, the
cohort's ideal-observer AUC (``cohort.json``), their ratio against the target, and the wall and CPU time of the
classification (cohort synthesis excluded; slice preparation, training, prediction and ensembles included).

With ``--split-seeds 0 1 2`` the grid is trained once per seed of the patients' split (``splits.seed``) and the
mean combined AUC over them is printed as well: on these 120-patient cohorts the split alone moves the combined AUC
by 0.03-0.04 (docs/speed.md), as much as most settings do, so compare settings on the mean over several splits.

Run: .venv/bin/python benchmarks/demo_auc.py [--seed 11] [--config configs/demo-sarcoma.yaml] [--work /tmp/auc]
     [--set train.epochs=6 --set slices.size=64 ...] [--split-seeds 0 1]   (target: ratio >= 0.95)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

TARGET = 0.95


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (every thread)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _apply(raw: dict[str, Any], assignment: str) -> str:
    """Set ``a.b.c=value`` (value read as YAML) in the raw config; returns a short tag for the run folder."""
    key, _, value = assignment.partition("=")
    node = raw
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = yaml.safe_load(value)
    return f"{leaf}={value}".replace("/", "_").replace(" ", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=11, help="the synthetic cohort's seed (the demo's own: 7)")
    ap.add_argument("--config", type=Path, default=Path("configs/demo-sarcoma.yaml"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/auc"), help="cohorts and run folders (scratch)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="change one config value for this run, e.g. train.epochs=6 (repeatable)")
    ap.add_argument("--tag", default=None, help="run folder name (default: from the overrides)")
    ap.add_argument("--split-seeds", type=int, nargs="+", default=None, metavar="SEED",
                    help="train once per split seed and print the mean (default: the config's splits.seed)")
    ap.add_argument("--resume", action="store_true", help="keep the run folder: finished models are not trained "
                    "again (the time printed is then only the rest's)")
    a = ap.parse_args()

    import torch

    from sarcomri import classification as cls_study
    from sarcomri.config import ClassificationConfig
    from sarcomri.synth.cohort import synthesise_cohort

    raw = yaml.safe_load(a.config.read_text())
    tags = [_apply(raw, s) for s in a.overrides]
    cfg = ClassificationConfig.model_validate(raw)
    if cfg.synth is None:
        raise SystemExit(f"{a.config} has no synth section")
    s = cfg.synth
    cohort_dir = (a.work / f"cohort-{s.task}-n{s.patients}-s{a.seed}").resolve()
    if not (cohort_dir / "cohort.json").is_file():
        t = time.perf_counter()
        synthesise_cohort(cohort_dir, task=s.task, n_patients=s.patients, seed=a.seed, sequences=s.sequences,
                          protocol=s.protocol(), progress=False)
        print(f"cohort {cohort_dir} synthesised in {time.perf_counter() - t:.0f} s")
    cfg.cohort = str(cohort_dir)
    split_seeds = a.split_seeds or [cfg.splits.seed]
    combined = []
    for split_seed in split_seeds:
        cfg.splits.seed = split_seed
        suffix = f"-split{split_seed}" if a.split_seeds else ""
        run_dir = a.work / f"run-{cfg.name}-s{a.seed}-{a.tag or '_'.join(tags) or 'config'}{suffix}"
        combined.append(_one_run(a, cfg, run_dir, tags, cls_study, torch))
    if len(combined) > 1:
        ideal = combined[0][1]
        mean = sum(auc for auc, _ in combined) / len(combined)
        print(f"mean combined AUC over split seeds {split_seeds}: {mean:.3f} ("
              + ", ".join(f"{auc:.3f}" for auc, _ in combined)
              + f"): ratio {mean / ideal:.2f} (target >= {TARGET:.2f})")


def _one_run(a: argparse.Namespace, cfg: Any, run_dir: Path, tags: list[str], cls_study: Any,
             torch: Any) -> tuple[float, float]:
    """Train and score the grid of ``cfg`` in ``run_dir``; print the AUCs and the time; return the combined AUC
    and the ideal observer's."""
    s = cfg.synth
    if run_dir.exists() and not a.resume:  # a fresh run each time: a reused folder would skip the finished models
        shutil.rmtree(run_dir)

    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), _cpu_seconds()
    out = cls_study.open_run(cfg, run_dir)
    cohort = cls_study.resolve_cohort(cfg, out, progress=False)
    preds = cls_study.run_classification(cfg, out, cohort, progress=False)
    tables = cls_study.ensemble_tables(out, cfg.slices.test_aggregation)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    ideal = float(cohort.meta["ideal_observer_auc"])

    print(f"{cfg.name} on seed {a.seed} ({s.patients} patients), split seed {cfg.splits.seed}"
          f"{'; ' + ', '.join(a.overrides) if tags else ''}: "
          f"{preds['model'].nunique()} models, run {run_dir}")
    rows = list(tables["per_sequence"].itertuples()) + list(tables["combined"].itertuples())
    for r in rows:
        print(f"  {r.sequence:<10} AUC {r.auc:.3f} ({r.auc_lower:.3f}-{r.auc_upper:.3f})  ratio {r.auc / ideal:.3f}")
    combined = float(tables["combined"]["auc"].iloc[0])
    print(f"ideal observer AUC {ideal:.3f}; combined AUC {combined:.3f}: ratio {combined / ideal:.2f} "
          f"(target >= {TARGET:.2f})")
    print(f"time: wall {wall:.0f} s, CPU {cpu:.0f} s, {torch.get_num_threads()} intra-op threads (load average at "
          f"start {load:.2f}, now {os.getloadavg()[0]:.2f}){'; resumed' if a.resume else ''}")
    return combined, ideal


if __name__ == "__main__":
    main()
