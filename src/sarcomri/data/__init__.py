"""Classification data: in-memory 2D slice sets, batch sampling of rare classes and batched augmentation.

Classification only, despite the generic name: the 2D segmenter's slices and augmentation are in
:mod:`sarcomri.seg2d.data` and :mod:`sarcomri.seg2d.augment`, the 3D segmenter's patches in
:mod:`sarcomri.seg3d.data`.
"""
