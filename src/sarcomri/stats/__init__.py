"""Diagnostic and reader statistics: pure functions from tables and arrays to numbers.

Modules: ``diagnostic`` (confusion-matrix metrics with CIs), ``roc`` (AUC, fast DeLong, ROC points,
thresholds), ``agreement`` (Cohen, Fleiss, ICC), ``readers`` (confidence scales, per-reader metrics),
``mrmc`` (Obuchowski-Rockette with Hillis degrees of freedom), ``groups`` (t, ANOVA, Tukey, Friedman,
Mann-Whitney, chi-square, Table 1), ``tables`` (the published tables) and ``segmentation`` (mask overlap
and surface distances). Nothing here imports torch.
"""
