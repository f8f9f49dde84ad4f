"""The HTML report of a run: ROC curves with readers, the published tables, segmentation, Grad-CAM,
misdiagnoses and the model card (figures with matplotlib, Jinja2 HTML). The report computes nothing: it renders
the tables the analysis stages wrote (:mod:`sarcomri.analysis.published`, :mod:`sarcomri.report.derived`).

Entry point: :func:`sarcomri.report.html.build_report` (``sarcomri report RUN``). Grad-CAM
(:func:`sarcomri.report.gradcam.gradcam`) imports torch only when used.
"""

from sarcomri.report.html import build_report
from sarcomri.report.misdiagnosis import ellipsoid_volume, ellipsoid_volume_cm3, mask_volume_cm3

__all__ = ["build_report", "ellipsoid_volume", "ellipsoid_volume_cm3", "mask_volume_cm3"]
