"""Inference: slice-to-patient aggregation and leave-one-out ensembles (:mod:`sarcomri.infer.aggregate`), and fast
CPU inference of trained classifiers with ONNX Runtime (:mod:`sarcomri.infer.onnx`)."""
