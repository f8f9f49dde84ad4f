"""3D tumour segmentation (soft-tissue sarcoma): an nnU-Net-style planner scaled to the machine, MONAI
DynUNet training with checkpoints, sliding-window inference back onto the input grid, and evaluation.

Modules: :mod:`~sarcomri.seg3d.config` (the YAML), :mod:`~sarcomri.seg3d.plan` (fingerprint and plan),
:mod:`~sarcomri.seg3d.data` (cases and patches), :mod:`~sarcomri.seg3d.model` (DynUNet, Dice + CE),
:mod:`~sarcomri.seg3d.train` (fit loop), :mod:`~sarcomri.seg3d.infer` (sliding windows),
:mod:`~sarcomri.seg3d.predict` (one new patient: :func:`~sarcomri.seg3d.predict.segment_patient`),
:mod:`~sarcomri.seg3d.evaluate` (per-case table, summaries), :mod:`~sarcomri.seg3d.crossval` (the study).
"""
