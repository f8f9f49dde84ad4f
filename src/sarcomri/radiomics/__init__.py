"""IBSI-compliant first-order radiomics: intensity statistics, pyradiomics' first-order set, the intensity
histogram family, and pyradiomics-compatible discretisation. Pure numpy; nothing here imports torch.

Modules: ``discretise`` (fixed bin width / bin count, unit checks), ``firstorder`` (intensity statistics,
energy, entropy, uniformity) and ``histogram`` (IBSI intensity-histogram features).
"""

from sarcomri.radiomics.discretise import ADC_UNIT_SCALE, BinningWarning
from sarcomri.radiomics.firstorder import firstorder_features, intensity_statistics
from sarcomri.radiomics.histogram import histogram_features

__all__ = ["ADC_UNIT_SCALE", "BinningWarning", "firstorder_features", "histogram_features",
           "intensity_statistics"]
