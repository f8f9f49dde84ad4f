"""A worker process of the local executors (the classification grid's, the 3D folds') ends when the process that
started it is killed: no orphan keeps training and writing into a run folder."""

import os
import signal
import subprocess
import sys
import time

PARENT = """
import multiprocessing as mp, sys, time
from sarcomri.train.executors import exit_with_parent

def child(ready):
    exit_with_parent(poll_seconds=0.2)
    open(ready, "w").close()
    time.sleep(120)

if __name__ == "__main__":
    p = mp.get_context("spawn").Process(target=child, args=(sys.argv[1],))
    p.start()
    print(p.pid, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has ended
        return f.read().split(")")[-1].split()[0] != "Z"


def test_worker_exits_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    ready = tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, str(script), str(ready)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    deadline = time.time() + 120  # the child imports sarcomri first (slow on a loaded machine)
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert ready.exists() and _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 15
    while _alive(child) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(child)
