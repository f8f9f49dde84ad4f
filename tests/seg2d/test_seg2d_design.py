"""The study design without training: domains, hold-out splits, nested fractions, the model list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sarcomri.cohort.splits import LeakageError
from sarcomri.seg2d.config import PAPER_FRACTIONS, TransferStudyConfig
from sarcomri.seg2d.design import plan_jobs, resolve_domains, study_splits, target_subsets


def test_paper_fractions_are_nested_with_at_least_one_patient_and_share_models(pair_cohort, tmp_path):
    cfg = TransferStudyConfig(name="d", cohort=str(pair_cohort), test_ratio=0.25, fractions=PAPER_FRACTIONS)
    domains = resolve_domains(cfg, tmp_path)
    assert len(domains["source"].patients) == 6 and len(domains["target"].patients) == 8
    splits = study_splits(cfg, domains, tmp_path)
    subsets = target_subsets(cfg, domains, splits, tmp_path)
    sizes = [int(np.isclose(subsets["fraction"], f).sum()) for f in PAPER_FRACTIONS]
    assert sizes == [1, 1, 1, 1, 3, 6]  # f x 6 rounded to the nearest, at least one
    prev: set = set()
    for f in PAPER_FRACTIONS:
        cur = set(subsets.loc[np.isclose(subsets["fraction"], f), "patient_id"])
        assert prev <= cur
        prev = cur
    jobs = plan_jobs(cfg, splits, subsets)
    assert [j.model for j in jobs][:2] == ["source", "target"]
    target = [j for j in jobs if j.model == "target"]
    assert [j.n_target for j in target] == [1, 3, 6]
    assert target[0].fractions == [0.02, 0.05, 0.1, 0.2] and target[0].folder == "models/target/n001"
    assert len(jobs) == 1 + 3 * (1 + 3 + 1)  # source + (target, L1-L3, aggregated) x 3 distinct subsets
    agg = [j for j in jobs if j.model == "aggregated"][-1]
    assert {d for d, _ in agg.train} == {"source", "target"} and len(agg.train) == 4 + 6
    l2 = [j for j in jobs if j.model == "transfer-L2"]
    assert all(j.init == "source" and j.level == "L2" for j in l2)
    # a model's seed depends on its kind and level, not on its training size
    assert len({j.seed for j in target}) == 1 and len({j.seed for j in jobs}) == 6
    test = set(splits.loc[splits["role"] == "test", "patient_id"])
    assert all(not ({p for _, p in j.train} & test) for j in jobs)


def test_a_patient_in_both_domains_or_roles_is_refused(pair_cohort, tmp_path):
    cfg = TransferStudyConfig(name="d", cohort=str(pair_cohort), test_ratio=0.25)
    domains = resolve_domains(cfg, tmp_path)
    splits = study_splits(cfg, domains, tmp_path)
    twice = pd.concat([splits, splits.iloc[[0]].assign(role="test")], ignore_index=True)
    twice.to_csv(tmp_path / "splits.csv", index=False)
    with pytest.raises(LeakageError):
        study_splits(cfg, domains, tmp_path)
    other = splits.iloc[[0]].assign(domain="target" if splits.iloc[0]["domain"] == "source" else "source")
    pd.concat([splits, other], ignore_index=True).to_csv(tmp_path / "splits.csv", index=False)
    with pytest.raises(LeakageError, match="both the source and the target"):
        study_splits(cfg, domains, tmp_path)
