"""2D tumour segmentation on slices (DeepLabV3+ and U-Net from segmentation_models_pytorch with timm encoders)
and the transfer-learning study of DWI tumour segmentation from one cancer to another.

Modules: :mod:`~sarcomri.seg2d.config` (the YAML), :mod:`~sarcomri.seg2d.data` (channels on one grid,
z-score, slices, reassembly onto the original grid), :mod:`~sarcomri.seg2d.augment` (the paper's six images
per image), :mod:`~sarcomri.seg2d.model` (networks, Dice + cross-entropy, freezing levels L1-L3),
:mod:`~sarcomri.seg2d.train` (fit loop with checkpoints and resume), :mod:`~sarcomri.seg2d.infer`
(slice-wise inference to a 3D mask), :mod:`~sarcomri.seg2d.transfer` (the study),
:mod:`~sarcomri.seg2d.tables` (the paper's tables, ANOVA + Tukey, the learning-curve figure).
"""
