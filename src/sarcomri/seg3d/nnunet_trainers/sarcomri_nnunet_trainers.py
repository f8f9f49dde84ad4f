"""Short nnU-Net v2 trainers: ``nnUNetTrainer_sarcomriTiny`` (1 epoch of 2 iterations, 1 validation iteration:
the CPU test of the integration, not a model to use) and ``nnUNetTrainer_sarcomri<N>epochs`` for quick runs.

nnU-Net finds trainers by class name, inside ``nnunetv2.training.nnUNetTrainer`` or in the folders listed in
``nnUNet_extTrainer`` (this module's folder when sarcomri runs nnU-Net), both for training and for prediction.
"""

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_sarcomriTiny(nnUNetTrainer):  # noqa: N801 - nnU-Net's naming
    """One epoch of two iterations and one validation iteration: checks the integration in seconds on a CPU."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 1
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1


class nnUNetTrainer_sarcomri50epochs(nnUNetTrainer):  # noqa: N801 - nnU-Net's naming
    """50 epochs of 250 iterations (nnU-Net's default is 1000 epochs)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 50
