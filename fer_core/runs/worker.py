"""The job worker: starts queued training jobs as separate processes, one device slot at a time, and tells
the registry when they start and end. launcher.ensure_worker starts it, detached, so it outlives the dashboard."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..errors import FERError
from ..paths import PROJECT_ROOT
from ..training.config import TrainConfig, config_to_args
from ..rundir.folder import RunFolder
from .index import Run
from .launcher import ensure_worker
from .registry import BAD_ROW, Registry


def job_command(run: Run) -> list[str]:
    """The command line of a job: `fer_core train`, under torchrun for several GPUs."""
    config = TrainConfig(**{**json.loads(run.config), "name": run.id, "out": str(Path(run.run_dir).parent)})
    train_args = ["--resume", run.run_dir] if run.resume else config_to_args(config)
    if run.gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", str(run.gpus), "-m", "fer_core", "train", *train_args]
    return [sys.executable, "-m", "fer_core", "train", *train_args]


def start_job(registry: Registry, run: Run) -> subprocess.Popen:
    command = job_command(run)  # a damaged row's config fails here, before anything is written
    folder = Path(run.run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    log = open(RunFolder(folder).log_file, "ab")
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    registry.started(run.id, proc.pid)
    return proc


def run_worker(folder: str | os.PathLike | None = None, slot: str = "cpu", parallel: int | None = None,
               poll_s: float = 1.0) -> None:
    """Start queued jobs of one device slot, `parallel` at a time, until the queue is empty.

    A lock file makes this the only worker of its slot; a second one exits at once.
    """
    registry = Registry(folder)
    parallel = parallel or int(os.environ.get("FER_JOBS_PER_DEVICE", "1"))
    lock = open(registry.runs_dir / f"worker-{slot}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return
    running: dict[str, subprocess.Popen] = {}
    try:
        while True:
            for run_id, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[run_id]
                    registry.exited(run_id, proc.returncode)
            queued = registry.queued(slot)
            for run_id in queued[:max(0, parallel - len(running))]:
                run = registry.get(run_id)
                try:
                    if not run.run_dir:
                        raise FERError(BAD_ROW)
                    running[run_id] = start_job(registry, run)
                except (FERError, ValueError, TypeError) as exc:  # a damaged row fails alone, the queue goes on
                    registry.not_started(run_id, str(exc))
            if not running and not queued:
                return
            time.sleep(poll_s)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    if registry.queued(slot):  # a job queued while this worker was exiting must not be stranded
        ensure_worker(registry.runs_dir, slot)
