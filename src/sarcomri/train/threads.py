"""PyTorch's CPU thread count as a context: the one place sarcomri changes it, always restored afterwards.

A library call that changes PyTorch's intra-op thread count and leaves it changed alters the speed (and, for
some reductions, the last bits) of whatever its caller runs next; every training and inference entry point that
takes a ``threads`` setting runs inside :func:`torch_threads` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None or 0: unchanged), restoring the previous count
    afterwards, also when the block raises."""
    before = torch.get_num_threads()
    _set_threads(int(n) if n else before)
    try:
        yield
    finally:
        _set_threads(before)


def _set_threads(n: int) -> None:
    """Set the intra-op thread count, only when it differs from the current one."""
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
