"""Networks: the registry of 2D classifiers over timm, pretrained weights, and trained model folders.

``build_classifier`` makes a network by name (any timm name; the studies' names and aliases are listed in
:mod:`sarcomri.models.registry`); ``load_pretrained`` and ``imagenet_weights_path`` bring weights from local
files and offline packages (:mod:`sarcomri.models.weights`); ``ModelSpec``, ``save_model`` and ``load_model``
write and rebuild a trained model folder (:mod:`sarcomri.models.spec`).
"""

from sarcomri.models.registry import (
    ModelSpec,
    UnknownModelError,
    build_classifier,
    list_classifiers,
    load_model,
    read_spec,
    resolve_name,
    save_model,
)
from sarcomri.models.weights import PACKAGED_WEIGHTS, LoadReport, imagenet_weights_path, load_pretrained

__all__ = [
    "PACKAGED_WEIGHTS", "LoadReport", "ModelSpec", "UnknownModelError", "build_classifier", "imagenet_weights_path",
    "list_classifiers", "load_model", "load_pretrained", "read_spec", "resolve_name", "save_model",
]
