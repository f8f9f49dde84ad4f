"""The 3D network and loss of a plan: MONAI's DynUNet (the nnU-Net architecture) with Dice + cross-entropy."""

from __future__ import annotations

import numpy as np
import torch
from monai.losses import DiceCELoss, HausdorffDTLoss
from monai.networks.nets import DynUNet

from sarcomri.models.spec import ModelKind
from sarcomri.seg3d.plan import Plan


def build_network(plan: Plan) -> DynUNet:
    """A DynUNet with the plan's kernels, strides and filters: instance norm with affine parameters and
    leaky ReLU (slope 0.01), as nnU-Net; with ``plan.deep_supervision`` extra heads, training mode returns
    (B, 1 + heads, classes, z, y, x) logits, the heads upsampled to full size (evaluation mode: the main one)."""
    return DynUNet(
        spatial_dims=3,
        in_channels=plan.in_channels,
        out_channels=plan.num_classes,
        kernel_size=plan.kernels,
        strides=plan.strides,
        upsample_kernel_size=plan.strides[1:],
        filters=plan.filters,
        norm_name=("instance", {"affine": True}),
        act_name=("leakyrelu", {"negative_slope": 0.01, "inplace": True}),
        deep_supervision=plan.deep_supervision > 0,
        deep_supr_num=max(1, plan.deep_supervision),
        res_block=False,
    )


def build_loss() -> DiceCELoss:
    """Soft Dice over the batch (background excluded, nnU-Net's ``batch_dice``) plus cross-entropy, equal weights.

    Takes logits (B, classes, z, y, x) and integer labels (B, 1, z, y, x).
    """
    return DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True,
                      smooth_nr=1e-5, smooth_dr=1e-5)


def build_boundary_loss() -> HausdorffDTLoss:
    """MONAI's distance-transform Hausdorff loss (Karimi and Salcudean 2019; alpha 2, background excluded, over
    the batch): the boundary-aware term of ``train.boundary_weight``. Takes what :func:`build_loss` takes."""
    return HausdorffDTLoss(alpha=2.0, include_background=False, to_onehot_y=True, softmax=True, batch=True)


def main_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The full-resolution head of plain (B, classes, ...) or deep-supervision (B, heads, classes, ...) logits."""
    return logits if logits.ndim == target.ndim else logits[:, 0]


def supervised_loss(loss_fn: DiceCELoss, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss of plain logits (B, classes, ...) or of deep-supervision logits (B, heads, classes, ...): the
    heads weighted 1, 1/2, 1/4, ... and normalised to sum to 1, as nnU-Net."""
    if logits.ndim == target.ndim:
        return loss_fn(logits.float(), target)
    weights = [0.5**i for i in range(logits.shape[1])]
    total = sum(w * loss_fn(logits[:, i].float(), target) for i, w in enumerate(weights))
    return total / sum(weights)


def count_parameters(network: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when PyTorch sees one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def level_shapes(plan: Plan) -> list[list[int]]:
    """The patch's spatial size (z, y, x) at each resolution level of the network."""
    size, out = np.asarray(plan.patch_size, int), []
    for stride in plan.strides:
        size = size // np.asarray(stride)
        out.append(size.tolist())
    return out


def bf16_safe(plan: Plan) -> bool:
    """False for networks where bfloat16 training on the CPU is unreliable: oneDNN's bfloat16 3D convolution
    backward gives run-to-run different (occasionally NaN) gradients when the first spatial axis is 2 voxels
    under a 3-wide kernel (found with torch 2.14 on an AVX-512 BF16 CPU; float32 is exact there)."""
    return not any(shape[0] == 2 and kernel[0] == 3 for shape, kernel in zip(level_shapes(plan), plan.kernels,
                                                                               strict=True))


#: 3D segmenters in the one model-folder format (:mod:`sarcomri.models.folder`): the plan is the spec, and is also
#: written as ``plan.json``.
SEG3D = ModelKind("seg3d", Plan.from_dict, build_network, sidecar=Plan.save)
