"""Starting the job worker: a detached process that outlives the dashboard (runs/worker.py is what it runs).

Apart from the worker so that the registry, which starts it, and the worker, which uses the registry, do not
import each other."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from ..paths import PROJECT_ROOT


def ensure_worker(folder: str | os.PathLike, slot: str) -> None:
    """Start a detached worker for `slot` unless one is running (it survives the dashboard)."""
    lock_path = Path(folder) / f"worker-{slot}.lock"
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(lock, fcntl.LOCK_UN)
        except BlockingIOError:
            return  # a worker holds the lock
    log = open(Path(folder) / f"worker-{slot}.log", "ab")
    subprocess.Popen([sys.executable, "-m", "fer_core", "runs", "worker", "--runs-dir", str(folder), "--slot", slot],
                     cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                     start_new_session=True)
    log.close()
