"""What a summed score means in the study: observed positive rate per level with Wilson CIs (statsmodels), and
the call's sensitivity, specificity, PPV and NPV at the threshold; bad tables are refused."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from sarcomri.analysis.score_meaning import score_meaning
from sarcomri.errors import InputError


def _scores() -> pd.DataFrame:
    # score -2: 36 patients, 3 positive (the example); 0: 10 patients, 5 positive; +2: 14 patients, 12 positive
    rows = [(-2, 1)] * 3 + [(-2, 0)] * 33 + [(0, 1)] * 5 + [(0, 0)] * 5 + [(2, 1)] * 12 + [(2, 0)] * 2
    return pd.DataFrame(rows, columns=["summed_score", "label"]).sample(frac=1, random_state=0)


def test_rates_per_score_level_with_wilson_intervals():
    meaning = score_meaning(_scores(), threshold=0, voting_sequences=2)
    assert [(lv.score, lv.patients, lv.positives) for lv in meaning.levels] == [(-2, 36, 3), (0, 10, 5), (2, 14, 12)]
    low = meaning.level(-2)
    assert low.rate == pytest.approx(3 / 36)
    assert (low.lower, low.upper) == pytest.approx(proportion_confint(3, 36, method="wilson"))
    assert round(100 * low.lower) == 3 and round(100 * low.upper) == 22  # "8% (3-22%)"
    assert meaning.level(1) is None
    assert meaning.possible == (-2, 2) and meaning.observed == (-2, 2)
    assert (meaning.patients, meaning.positives) == (60, 20)


def test_metrics_at_the_threshold_count_scores_at_or_above_it_as_positive():
    meaning = score_meaning(_scores(), threshold=0, voting_sequences=2)
    tp, fp, fn, tn = 17, 7, 3, 33
    at = meaning.at_threshold
    for metric, (k, n) in {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp), "ppv": (tp, tp + fp),
                           "npv": (tn, tn + fn)}.items():
        assert (at[metric]["numerator"], at[metric]["denominator"]) == (k, n)
        assert at[metric]["estimate"] == pytest.approx(k / n)
        assert (at[metric]["lower"], at[metric]["upper"]) == pytest.approx(proportion_confint(k, n, method="wilson"))
    strict = score_meaning(_scores(), threshold=1, voting_sequences=2).at_threshold
    assert strict["sensitivity"]["numerator"] == 12 and strict["specificity"]["numerator"] == 38
    assert "optimistic" in score_meaning(_scores(), 0, 2).to_dict()["caveat"]


def test_bad_tables_are_refused():
    with pytest.raises(InputError, match="lack the column"):
        score_meaning(pd.DataFrame({"summed_score": [1]}), 0, 2)
    with pytest.raises(InputError, match="whole numbers"):
        score_meaning(pd.DataFrame({"summed_score": [0.5], "label": [1]}), 0, 2)
    with pytest.raises(InputError, match="0 .negative. or 1"):
        score_meaning(pd.DataFrame({"summed_score": [1], "label": [2]}), 0, 2)
    with pytest.raises(InputError, match="no summed scores"):
        score_meaning(pd.DataFrame({"summed_score": [np.nan], "label": [1]}), 0, 2)
