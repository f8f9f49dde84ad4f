"""2D segmentation networks (segmentation_models_pytorch with timm encoders), Dice + cross-entropy loss and
the freezing levels of the transfer-learning study.

Freezing levels, as the transfer-learning paper defines them (Lin et al., Insights Imaging 2023): the
paper's *encoder* is the Xception backbone plus the atrous spatial pyramid pooling (ASPP) and the layer after
it; its *decoder* is the upsampling, the low-level-feature projection, the fusion convolution and the
segmentation head. Each level freezes everything before its point and retrains the rest; each contains the
previous one. The parts are smp's module names of :class:`segmentation_models_pytorch.DeepLabV3Plus`
(smp 0.6), whose ``decoder.aspp`` is ``Sequential(ASPP, SeparableConv2d, BatchNorm2d, ReLU)``:

======  ======================================================  =================================================
level   the paper's point (retrained from there)                DeepLabV3+ frozen (smp names)
======  ======================================================  =================================================
L0      none: the whole network is fine-tuned                   nothing
L1      the first layer after the backbone: ASPP and decoder    ``encoder`` (the timm backbone)
        retrained
L2      the layer after ASPP that ends the encoder: that        L1 + ``decoder.aspp.0.convs`` (the five parallel
        layer and the decoder retrained                         ASPP branches: 1x1, three atrous 3x3, pooling)
L3      the start of the decoder: the whole encoder frozen,     L2 + ``decoder.aspp.0.project`` (1x1 projection of
        the decoder retrained                                   the concatenated branches, dropout),
                                                                ``decoder.aspp.1`` (3x3 separable conv),
                                                                ``decoder.aspp.2`` (its BatchNorm): all of
                                                                ``decoder.aspp``
======  ======================================================  =================================================

So at L2 the layer after ASPP that ends the encoder, ``decoder.aspp.0.project`` + ``decoder.aspp.1`` +
``decoder.aspp.2`` (in the original DeepLabV3+ the 1x1 convolution after the concatenated branches; smp adds
the separable 3x3 conv at the same place, before the upsampling), trains with the decoder; at L3 what
trains is the decoder alone: ``decoder.block1`` (1x1 projection of the low-level backbone features),
``decoder.block2`` (the 3x3 separable conv fusing them with the upsampled encoder output) and
``segmentation_head`` (``decoder.up``, the bilinear upsampling, has no parameters).

U-Net has no ASPP; its levels are the project's analogue, not the paper's: L1 ``encoder``; L2 L1 +
``decoder.center`` + ``decoder.blocks.0`` (the deepest decoder block, the context module at the coarsest
resolution); L3 L2 + every decoder block but the last (trainable: the last block and the head).

BatchNorm when frozen: a frozen module's parameters get ``requires_grad = False`` (and are left out of the
optimiser) and the module is kept in evaluation mode during fine-tuning (:func:`set_train_mode`), so its
BatchNorm layers normalise with the running mean and variance learnt on the source and never update them,
and its dropout is off. Unfrozen modules train normally, their BatchNorm statistics adapting to the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import segmentation_models_pytorch as smp
import torch
from torch import nn

from sarcomri.errors import InputError, SarcomriError
from sarcomri.models.spec import ModelKind
from sarcomri.seg2d.config import LEVELS, DataSettings2D, NetworkSettings


def build_network(settings: NetworkSettings, in_channels: int) -> nn.Module:
    """A DeepLabV3+ or U-Net with one output channel (tumour logit), randomly initialised unless
    ``settings.encoder_weights`` names a local encoder state_dict. Nothing is downloaded."""
    common = dict(encoder_name=settings.encoder, encoder_weights=None, in_channels=in_channels, classes=1,
                  encoder_depth=settings.encoder_depth)
    try:
        if settings.arch == "deeplabv3plus":
            net = smp.DeepLabV3Plus(decoder_channels=settings.decoder_channels, **common)
        else:
            chans = [max(8, settings.decoder_channels // 2**i) for i in range(settings.encoder_depth)]
            net = smp.Unet(decoder_channels=chans, **common)
    except (KeyError, RuntimeError, ValueError) as err:
        raise InputError(None, f"cannot build {settings.arch} with encoder {settings.encoder}: {err}") from None
    if settings.encoder_weights:
        from sarcomri.models.weights import is_imagenet_request

        if is_imagenet_request(settings.encoder_weights):
            load_imagenet_encoder(net, settings.encoder, settings.encoder_weights, in_channels)
            return net
        path = Path(settings.encoder_weights)
        if not path.is_file():
            raise InputError(path, "encoder_weights: no such file (a state_dict of the encoder)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = net.encoder.load_state_dict(state, strict=False)
        if len(missing) == len(list(net.encoder.state_dict())):
            raise InputError(path, "no key of this file matches the encoder's state_dict")
    return net


def load_imagenet_encoder(network: nn.Module, encoder: str, request: str, in_channels: int) -> None:
    """Load offline ImageNet weights (``"imagenet"`` or a package of :data:`sarcomri.models.weights.PACKAGED_WEIGHTS`,
    e.g. EfficientNet-Lite0) into the timm encoder of an smp network, in place: the weights go through the
    classification loader (layout conversion; the input convolution adapted to ``in_channels``), then every
    tensor of the encoder must be found in them (the classifier head is not part of the encoder)."""
    import timm

    from sarcomri.models.weights import PACKAGED_WEIGHTS, load_pretrained, packaged_weights_for

    arch = encoder.removeprefix("tu-")
    try:
        pkg = packaged_weights_for(arch, request)
    except SarcomriError as err:
        raise InputError(None, f"encoder_weights {request!r}: {err}") from None
    if pkg is None:
        have = sorted({f"tu-{a}" for p in PACKAGED_WEIGHTS.values() for a in p.architectures})
        raise InputError(None, f"no offline ImageNet weights for the encoder {encoder}; available for: "
                               f"{', '.join(have)} (or give a file)")
    classifier = timm.create_model(arch, pretrained=False, in_chans=in_channels)
    load_pretrained(classifier, pkg)
    target = network.encoder.model
    wanted = target.state_dict()
    state = {k: v for k, v in classifier.state_dict().items() if k in wanted}
    missing = [k for k in wanted if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise InputError(None, f"the ImageNet weights of {arch} lack {len(missing)} encoder tensor(s), e.g. "
                               f"{', '.join(missing[:3])}")
    target.load_state_dict(state, strict=False)


def frozen_prefixes(network: nn.Module, arch: str, level: str) -> list[str]:
    """The module names frozen at ``level`` for ``arch`` (see the module docstring)."""
    if level not in LEVELS:
        raise InputError(None, f"unknown freezing level {level!r}; choose from {', '.join(LEVELS)}")
    depth = LEVELS.index(level)
    if depth == 0:
        return []
    if arch == "deeplabv3plus":
        parts = [["encoder"], ["decoder.aspp.0.convs"], ["decoder.aspp.0.project", "decoder.aspp.1", "decoder.aspp.2"]]
    elif arch == "unet":
        n = len(network.decoder.blocks)
        parts = [["encoder"], ["decoder.center", "decoder.blocks.0"], [f"decoder.blocks.{i}" for i in range(1, n - 1)]]
    else:
        raise InputError(None, f"unknown architecture {arch!r}")
    return [name for group in parts[:depth] for name in group]


def freeze(network: nn.Module, arch: str, level: str) -> list[nn.Module]:
    """Freeze ``network`` up to ``level``: ``requires_grad = False`` on the frozen modules' parameters.
    Returns those modules (pass them to :func:`set_train_mode`)."""
    modules = dict(network.named_modules())
    frozen = []
    for name in frozen_prefixes(network, arch, level):
        if name not in modules:
            raise InputError(None, f"{arch} has no module {name!r} to freeze")
        frozen.append(modules[name])
        for p in modules[name].parameters():
            p.requires_grad_(False)
    return frozen


def set_train_mode(network: nn.Module, frozen: list[nn.Module]) -> None:
    """Training mode for the network but evaluation mode for frozen modules (their BatchNorm running
    statistics stay as they were and their dropout is off)."""
    network.train()
    for m in frozen:
        m.eval()


def trainable_parameters(network: nn.Module) -> list[nn.Parameter]:
    """Parameters the optimiser updates."""
    return [p for p in network.parameters() if p.requires_grad]


def part_of(name: str) -> str:
    """The part of the network a parameter or buffer name belongs to, at the grain of the freezing levels:
    ``encoder``, ``decoder.<child>`` (``decoder.block1``, ...; U-Net: ``decoder.blocks.<i>``), DeepLabV3+'s
    ``decoder.aspp.0.convs``, ``decoder.aspp.0.project``, ``decoder.aspp.1``, ``decoder.aspp.2``, or
    ``segmentation_head``."""
    bits = name.split(".")
    if bits[0] != "decoder" or len(bits) < 2:
        return bits[0]
    if bits[1] == "aspp" and len(bits) > 3:
        return ".".join(bits[:4]) if bits[2] == "0" else ".".join(bits[:3])
    return ".".join(bits[:3]) if bits[1] == "blocks" else ".".join(bits[:2])


class DiceCELoss(nn.Module):
    """Soft Dice loss over the whole batch plus binary cross-entropy, on one tumour logit per pixel.

    Dice = 1 - (2 sum(p y) + 1) / (sum(p) + sum(y) + 1) with p = sigmoid(logit), summed over every pixel of
    the batch (a batch of background-only slices still has a defined loss)."""

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0) -> None:
        super().__init__()
        self.dice_weight, self.ce_weight = dice_weight, ce_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float().reshape(logits.shape)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
        ce = nn.functional.binary_cross_entropy_with_logits(logits, target)
        return self.dice_weight * dice + self.ce_weight * ce


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def count_parameters(network: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad or not trainable_only)


@dataclass
class Seg2DSpec:
    """What rebuilding and feeding a saved 2D network needs: the network's settings, its input preparation
    (sequences, image size, normalisation) and, for a transfer-study model, what it is (``kind``, ``level``,
    ``init`` in ``extra``). The ``spec`` of a 2D model folder's ``model.json`` (:mod:`sarcomri.models.folder`)."""

    task: ClassVar[str] = "seg2d"

    network: NetworkSettings
    data: DataSettings2D
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        """One input channel per sequence."""
        return len(self.data.sequences)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``network`` and ``data`` settings, then the ``extra`` entries."""
        return {"network": self.network.model_dump(mode="json"), "data": self.data.model_dump(mode="json"),
                **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seg2DSpec:
        """The inverse of :meth:`to_dict` (invalid settings raise a ``ValueError``)."""
        if not isinstance(data, dict) or not {"network", "data"} <= set(data):
            raise ValueError("a 2D segmentation spec needs 'network' and 'data'")
        extra = {k: v for k, v in data.items() if k not in ("network", "data")}
        return cls(NetworkSettings(**data["network"]), DataSettings2D(**data["data"]), extra)


def _network_of(spec: Seg2DSpec) -> nn.Module:
    """The untrained network of a spec (no encoder weights: the model folder's replace them)."""
    return build_network(spec.network.model_copy(update={"encoder_weights": None}), spec.in_channels)


#: 2D segmenters in the one model-folder format (:mod:`sarcomri.models.folder`).
SEG2D = ModelKind("seg2d", Seg2DSpec.from_dict, _network_of)
