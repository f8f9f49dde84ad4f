"""Training for every task: THE fit loop (:mod:`sarcomri.train.fit`: per-epoch seeding, checkpoints, bit-identical
resumption, progress callbacks) with the thread context (:mod:`sarcomri.train.threads`); classification on it
(:mod:`sarcomri.train.classifier`, settings in :mod:`sarcomri.train.config`), 2D and 3D segmentation on it
(:mod:`sarcomri.seg2d.train`, :mod:`sarcomri.seg3d.train`); grids of classification jobs and where they run
(:mod:`sarcomri.train.grid`, :mod:`sarcomri.train.jobs`, :mod:`sarcomri.train.executors`)."""
