"""Tensors for training: in-memory 2D slice sets, batch sampling and batched augmentation."""
