"""Short nnU-Net v2 trainers: ``nnUNetTrainer_sarcomriTiny`` (1 epoch of 2 iterations, 1 validation iteration:
the CPU test of the integration, not a model to use), ``nnUNetTrainer_sarcomri50epochs`` for quick runs and
``nnUNetTrainer_sarcomriTimed``, which fits nnU-Net's schedule into a wall-clock budget.

nnU-Net finds trainers by class name, inside ``nnunetv2.training.nnUNetTrainer`` or in the folders listed in
``nnUNet_extTrainer`` (this module's folder when sarcomri runs nnU-Net), both for training and for prediction.
"""

import math
import os

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

BUDGET_ENV = "SARCOMRI_NNUNET_MINUTES"
DEFAULT_BUDGET_MINUTES = 10.0


def epochs_within(budget_s: float, elapsed_s: float, epochs_done: int) -> int:
    """How many epochs a run may have in all so that it ends within ``budget_s`` seconds of its start, at the
    pace of the ``epochs_done`` epochs that took ``elapsed_s`` seconds (at least the epochs already done, and 1)."""
    if epochs_done < 1 or elapsed_s <= 0:
        raise ValueError("the pace needs at least one finished epoch and a positive elapsed time")
    per_epoch = elapsed_s / epochs_done
    return max(epochs_done, 1, math.floor(budget_s / per_epoch))


def seconds_trained(starts: list[float], ends: list[float], epochs_done: int) -> float:
    """The seconds the first ``epochs_done`` epochs took, from nnU-Net's logged epoch start and end times."""
    if len(starts) < epochs_done or len(ends) < epochs_done:
        raise ValueError(f"the log holds {min(len(starts), len(ends))} timed epochs, not {epochs_done}")
    return float(sum(e - s for s, e in zip(starts[:epochs_done], ends[:epochs_done], strict=True)))


def budget_seconds(environ: dict[str, str] | None = None) -> float:
    """The training budget of ``nnUNetTrainer_sarcomriTimed``: ``SARCOMRI_NNUNET_MINUTES`` (default 10) in seconds."""
    raw = (environ if environ is not None else os.environ).get(BUDGET_ENV, str(DEFAULT_BUDGET_MINUTES))
    try:
        minutes = float(raw)
    except ValueError:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: a number of minutes, e.g. 10") from None
    if not minutes > 0:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: the budget must be positive")
    return minutes * 60.0


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


class nnUNetTrainer_sarcomriTimed(nnUNetTrainer):  # noqa: N801 - nnU-Net's naming
    """nnU-Net's trainer (epochs of 250 iterations, SGD with the poly schedule) with as many epochs as fit into
    ``SARCOMRI_NNUNET_MINUTES`` of training: the first epoch is timed, the number of epochs set from its pace and
    the poly schedule stretched over them. The final validation comes after the budget. For a quick figure on a
    GPU lent for minutes; the first epoch's warm-up makes the estimate cautious. A resumed run (``--c``, which the
    engine passes when ``checkpoint_latest.pth`` exists) plans again from the pace of the epochs its log holds."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.budget_s = budget_seconds()

    def run_training(self) -> None:
        """nnU-Net's loop over a number of epochs that changes: planned after the first epoch, or at once when
        resumed (the budget is for the whole run)."""
        self.on_train_start()
        if self.current_epoch > 0:
            self._plan()
        while self.current_epoch < self.num_epochs:
            self.on_epoch_start()
            self.on_train_epoch_start()
            train_outputs = [self.train_step(next(self.dataloader_train))
                             for _ in range(self.num_iterations_per_epoch)]
            self.on_train_epoch_end(train_outputs)
            with torch.no_grad():
                self.on_validation_epoch_start()
                val_outputs = [self.validation_step(next(self.dataloader_val))
                               for _ in range(self.num_val_iterations_per_epoch)]
                self.on_validation_epoch_end(val_outputs)
            self.on_epoch_end()
            if self.current_epoch == 1:
                self._plan()
        self.on_train_end()

    def _plan(self) -> None:
        """The epochs in all at the pace of those done (nnU-Net's logged epoch times), the poly schedule ending
        with them."""
        spent = seconds_trained(self.logger.get_value("epoch_start_timestamps", step=None),
                                self.logger.get_value("epoch_end_timestamps", step=None), self.current_epoch)
        epochs = epochs_within(self.budget_s, spent, self.current_epoch)
        self.num_epochs = epochs
        self.lr_scheduler.max_steps = epochs
        self.print_to_log_file(f"{epochs} epochs fit into {self.budget_s / 60:g} minutes")
