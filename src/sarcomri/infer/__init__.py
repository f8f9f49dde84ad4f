"""Classification inference: slice-to-patient aggregation and leave-one-out ensembles (:mod:`sarcomri.infer.aggregate`),
and fast CPU inference of trained classifiers with ONNX Runtime (:mod:`sarcomri.infer.onnx`).

Classification only, despite the generic name: segmentation inference (slice-wise reassembly, sliding windows,
fold ensembles) is in :mod:`sarcomri.seg2d.infer` and :mod:`sarcomri.seg3d.infer`.
"""
