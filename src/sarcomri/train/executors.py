"""Where grid jobs run: in this process, in local worker processes sharing the cores, or on Ray.

Every executor takes the same top-level job function and arguments, so a grid moves from a laptop to a
cluster without code changes (``executor: {kind: ray, ray_address: auto}`` in the config).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

_WATCHING = False  # this process watches its parent already


def exit_with_parent(poll_seconds: float = 2.0) -> None:
    """In a worker process: end it when the process that started it is gone (killed, not just interrupted), so
    that no orphan keeps training and writing into a run folder nobody waits for. Checkpoints and masks are
    written atomically, so ending between two writes loses at most the epoch in progress."""
    import threading

    global _WATCHING
    if _WATCHING:
        return
    _WATCHING = True
    started_by = mp.parent_process()  # known from the start, even if the parent died while this one imported
    parent = started_by.pid if started_by is not None and started_by.pid else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class LocalExecutor:
    """Run jobs one after another in this process (progress within each job is shown)."""

    kind = "local"

    def map(self, fn: Callable[..., Any], calls: Iterable[tuple[tuple, dict]]) -> Iterator[Any]:
        for args, kwargs in calls:
            yield fn(*args, **kwargs)


class ProcessExecutor:
    """Run jobs in ``workers`` spawned processes; each gets an equal share of the CPU threads."""

    kind = "processes"

    def __init__(self, workers: int = 2):
        self.workers = max(1, workers)

    def map(self, fn: Callable[..., Any], calls: Iterable[tuple[tuple, dict]]) -> Iterator[Any]:
        threads = max(1, cores() // self.workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=exit_with_parent) as pool:
            futures = [pool.submit(fn, *args, **{**kwargs, "threads": threads}) for args, kwargs in calls]
            for fut in as_completed(futures):
                yield fut.result()


class RayExecutor:
    """Run jobs as Ray tasks (``pip install 'sarcomri[cluster]'``); ``address=None`` starts a local Ray."""

    kind = "ray"

    def __init__(self, address: str | None = None, cpus_per_job: float = 1.0):
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise RuntimeError("the Ray executor needs the optional extra: pip install 'sarcomri[cluster]'") from exc
        self.ray = ray
        self.cpus_per_job = cpus_per_job
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)

    def map(self, fn: Callable[..., Any], calls: Iterable[tuple[tuple, dict]]) -> Iterator[Any]:
        remote = self.ray.remote(num_cpus=self.cpus_per_job)(fn)
        threads = max(1, int(self.cpus_per_job))
        pending = [remote.remote(*args, **{**kwargs, "threads": threads}) for args, kwargs in calls]
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            yield self.ray.get(done[0])


def make_executor(kind: str = "local", workers: int = 1, ray_address: str | None = None):
    """The executor named in a config's ``executor`` section."""
    if kind == "local":
        return LocalExecutor()
    if kind == "processes":
        return ProcessExecutor(workers)
    if kind == "ray":
        return RayExecutor(ray_address)
    raise ValueError(f"unknown executor {kind!r}; choose local, processes or ray")
