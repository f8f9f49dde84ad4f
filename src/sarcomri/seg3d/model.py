"""The 3D network and loss of a plan: MONAI's DynUNet (the nnU-Net architecture) with Dice + cross-entropy."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import DynUNet

from sarcomri.seg3d.plan import Plan


def build_network(plan: Plan) -> DynUNet:
    """A DynUNet with the plan's kernels, strides and filters: instance norm with affine parameters and
    leaky ReLU (slope 0.01), as nnU-Net; no deep supervision."""
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
        deep_supervision=False,
        res_block=False,
    )


def build_loss() -> DiceCELoss:
    """Soft Dice over the batch (background excluded, nnU-Net's ``batch_dice``) plus cross-entropy, equal weights.

    Takes logits (B, classes, z, y, x) and integer labels (B, 1, z, y, x).
    """
    return DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True,
                      smooth_nr=1e-5, smooth_dr=1e-5)


def count_parameters(network: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)
