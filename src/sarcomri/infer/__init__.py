"""Classification inference: slice-to-patient aggregation and leave-one-out ensembles (:mod:`sarcomri.infer.aggregate`),
fast CPU inference of trained classifiers with ONNX Runtime (:mod:`sarcomri.infer.onnx`), model folders exported
to ONNX once per architecture and keyed by their weights (:mod:`sarcomri.infer.export`), and the sessions a
process keeps (:mod:`sarcomri.infer.pool`).

Classification only, despite the generic name: segmentation inference (slice-wise reassembly, sliding windows,
fold ensembles) is in :mod:`sarcomri.seg2d.infer` and :mod:`sarcomri.seg3d.infer`.
"""
