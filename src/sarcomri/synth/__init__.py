"""The embedded default data: a synthetic multi-sequence MRI cohort with known ground truth (uterine tasks
sarcoma, carcinosarcoma, segmentation; soft-tissue sarcoma task sts).

* :mod:`~sarcomri.synth.latent`: per-patient latent variables by class, and the ideal observer.
* :mod:`~sarcomri.synth.anatomy`: phantom pelvis, uterus and tumour geometry; limb, trunk, abdomen and pelvis
  cross-sections around a soft-tissue sarcoma.
* :mod:`~sarcomri.synth.appearance`: per-sequence signal models, blur, bias field, Rician noise, ADC.
* :mod:`~sarcomri.synth.acquisition`: each sequence's voxel grid (axial, sagittal, coronal).
* :mod:`~sarcomri.synth.tasks`: labels, prevalence, hospitals, availability and clinical columns per task.
* :mod:`~sarcomri.synth.readers`: synthetic readers on the 6-point confidence scale, with and without AI.
* :mod:`~sarcomri.synth.cohort`: :func:`synthesise_cohort` writes the cohort folder atomically.
* :mod:`~sarcomri.synth.dicom`: writes a cohort's volumes as DICOM MR series and DICOM-SEG masks.

See docs/synthetic.md.
"""
