"""Networks and trained model folders, for every task.

``build_classifier`` makes a 2D classifier by name (any timm name; the studies' names and aliases are listed in
:mod:`sarcomri.models.registry`); ``load_pretrained`` and ``imagenet_weights_path`` bring weights from local
files and offline packages (:mod:`sarcomri.models.weights`). ``save_model``, ``load_model`` and ``read_spec``
write and rebuild a trained model folder of any task, classifier (:class:`ModelSpec`), 2D segmenter or 3D
segmenter (:mod:`sarcomri.models.folder`).
"""

from sarcomri.models.folder import is_model_folder, load_model, read_info, read_spec, save_model
from sarcomri.models.registry import UnknownModelError, build_classifier, list_classifiers, resolve_name
from sarcomri.models.spec import ModelSpec
from sarcomri.models.weights import PACKAGED_WEIGHTS, LoadReport, imagenet_weights_path, load_pretrained

__all__ = [
    "PACKAGED_WEIGHTS", "LoadReport", "ModelSpec", "UnknownModelError", "build_classifier", "imagenet_weights_path",
    "is_model_folder", "list_classifiers", "load_model", "load_pretrained", "read_info", "read_spec", "resolve_name",
    "save_model",
]
