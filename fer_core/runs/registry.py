"""The run registry: training jobs as the dashboard and `python -m fer_core runs` see and control them.

Each run is a folder under the runs directory (run_folder.py) plus a row in the run index beside them
(run_index.py), so every dashboard tab and the CLI see the same state, and it survives restarts. The rows
are brought up to date from the folders by reconcile.py, which decides how each job ended. Jobs are started
by the worker in jobs.py (one process per job, one at a time per device slot); this module queues, cancels,
resumes and deletes them.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path

from ..errors import FERError
from ..models.devices import uses_cuda
from ..paths import BadNameError, UnsafePathError, check_name, runs_dir, shown, storage_error
from ..training.config import TrainConfig
from . import launcher
from ..rundir.folder import RunFolder, lock_holder, now, pid_alive, run_path, trainer_alive
from .index import Run, RunIndex
from .reconcile import ACTIVE, adopted_row, is_settled, reconcile

BAD_ROW = "this registry row names no valid run folder: it can only be deleted"


class Registry:
    def __init__(self, folder: str | os.PathLike | None = None):
        self.runs_dir = Path(folder or runs_dir())
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, "creating the runs folder", self.runs_dir) from None
        self.index = RunIndex(self.runs_dir / "registry.sqlite")
        self.not_saved = ""  # why the last refresh could not write the index (a full or read-only disk)

    # ------------------------------------------------------------------ reading

    def _folder(self, run_id: str) -> Path | None:
        """The run's folder, or None for an id that is no plain folder name (a damaged registry row)."""
        try:
            return run_path(self.runs_dir, run_id)
        except (BadNameError, UnsafePathError):
            return None

    def _run(self, row) -> Run:
        folder = self._folder(row["id"])
        run = Run(**dict(row), run_dir=str(folder or ""))
        if folder is None:  # whatever a crafted or damaged row claims, it is no run
            run.state, run.error = "damaged", BAD_ROW
        return run

    def list(self, refresh: bool = True) -> list[Run]:
        """Every run, newest first; `refresh` first brings the rows up to date with the run folders.

        Listing needs no write: where the index cannot be written (a full or read-only disk), the rows are
        brought up to date for this answer only, and `not_saved` says why."""
        if not refresh:
            return [self._run(r) for r in self.index.rows()]
        pending: dict[str, dict] = {}
        self.refresh(pending)
        rows = [{**dict(r), **pending.pop(r["id"], {})} for r in self.index.rows()]
        rows += [p for p in pending.values() if "config" in p]  # adopted run folders the index could not take
        rows.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        return [self._run(r) for r in rows]

    def get(self, run_id: str) -> Run:
        row = self.index.get(run_id)
        if row is None:
            raise FERError(f"no run '{run_id}' in {self.runs_dir}")
        return self._run(row)

    # ------------------------------------------------------------------ writing

    def submit(self, config: TrainConfig, gpus: int = 1, sweep: str | None = None, start_worker: bool = True) -> str:
        """Queue a training job; returns its run id. Invalid options raise ValueError before anything starts."""
        config.validate()  # the run name's rule included
        if gpus < 1:
            raise ValueError("gpus must be at least 1")
        run_id = config.name or self._new_id(config.arch)
        taken = ValueError(f"the name '{run_id}' is taken by another run: choose another name")
        if run_path(self.runs_dir, run_id).exists() or self.index.exists(run_id):
            raise taken
        config = TrainConfig(**{**asdict(config), "name": run_id, "out": str(self.runs_dir)})
        slot = "cuda" if uses_cuda(config.device) else "cpu"
        try:
            self.index.insert(id=run_id, arch=config.arch, state="queued", slot=slot, sweep=sweep, gpus=gpus,
                              created=now(), epochs=config.epochs, config=json.dumps(asdict(config)))
        except sqlite3.IntegrityError:  # another tab took the name since the check above
            raise taken from None
        if start_worker:
            launcher.ensure_worker(self.runs_dir, slot)
        return run_id

    def submit_sweep(self, base: TrainConfig, grid: dict[str, list], name: str | None = None, **kw) -> list[str]:
        """One queued job per combination of the values in `grid` (one or two options), grouped as a sweep."""
        if not 1 <= len(grid) <= 2 or not all(grid.values()):
            raise ValueError("a sweep varies one or two options, each with at least one value")
        sweep = check_name(name, "sweep name") if name is not None else f"sweep-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        combos: list[dict] = [{}]
        for key, values in grid.items():
            combos = [{**c, key: v} for c in combos for v in values]
        configs = [TrainConfig(**{**asdict(base), **combo, "name": None}) for combo in combos]
        for c in configs:
            c.validate()  # refuse the whole sweep before queueing any of it
        return [self.submit(c, sweep=sweep, **kw) for c in configs]

    def cancel(self, run_id: str) -> None:
        """Stop a job cleanly: a queued job never starts; a running one gets SIGTERM and keeps last.pt.

        Only the process that holds the run's trainer lock is signalled (with its process group when that
        group is the job's own: torchrun and its workers); a PID from the registry is never trusted alone."""
        run = self.get(run_id)
        folder = self._folder(run_id)
        if run.state == "queued":
            self._set_state(run_id, state="cancelled", ended=now())
            return
        holder = lock_holder(folder) if folder is not None else None
        ended = RunFolder(folder).status()[0].get("state") if folder is not None else None
        if ended in ("finished", "pruned"):  # it cannot resume: whoever holds its lock file is not its trainer
            raise FERError(f"run '{shown(run_id)}' is {ended}: nothing to cancel")
        if holder is not None and not pid_alive(holder):  # a lock taken by some other program
            raise FERError(f"run '{shown(run_id)}': the process holding its lock ({holder}) is not a fer_core trainer "
                           f"and is not signalled; nothing to cancel")
        if holder is None:
            if run.state == "running":
                raise FERError(f"run '{shown(run_id)}' has no trainer holding its lock: its process ended or has not "
                               f"started training yet (the registry's PID {run.pid} is not signalled); nothing to cancel")
            raise FERError(f"run '{shown(run_id)}' is {run.state}: nothing to cancel")
        group = _process_group(holder)
        if group is not None and group in (holder, run.pid):
            os.killpg(group, signal.SIGTERM)
        else:
            os.kill(holder, signal.SIGTERM)

    def resume(self, run_id: str) -> None:
        """Queue an interrupted, cancelled or failed run to continue from its last checkpoint."""
        self.refresh()  # a run resumed or finished from the CLI is seen as it is now
        run = self.get(run_id)
        folder = self._folder(run_id)
        if folder is None:
            raise FERError(run.error)
        if trainer_alive(folder):
            raise FERError(f"run '{run_id}' is being trained right now (e.g. a --resume from the command line): "
                           f"it cannot be resumed twice")
        if run.state not in ("interrupted", "cancelled", "failed"):
            raise FERError(f"run '{run_id}' is {run.state}: only interrupted, cancelled or failed runs resume")
        if not RunFolder(folder).has(RunFolder.CONFIG):
            raise FERError(f"run '{run_id}' never started (no {RunFolder.CONFIG}): start a new run instead")
        self._set_state(run_id, state="queued", resume=1, error=None, ended=None, pid=None)
        launcher.ensure_worker(self.runs_dir, run.slot)

    def delete(self, run_id: str) -> None:
        """Remove the run's folder and its row; a row that names no folder inside the runs folder loses only the row."""
        run = self.get(run_id)
        folder = self._folder(run_id)
        if (run.state == "running" and pid_alive(run.pid)) or (folder is not None and trainer_alive(folder)):
            raise FERError(f"run '{run_id}' is running: cancel it first")
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        self.index.delete(run_id)

    # ------------------------------------------------------------------ for the worker

    def queued(self, slot: str) -> list[str]:
        """Ids of the jobs waiting for `slot`, oldest first."""
        return self.index.queued(slot)

    def started(self, run_id: str, pid: int) -> None:
        self._set_state(run_id, state="running", pid=pid, started=now(), error=None)

    def not_started(self, run_id: str, why: str) -> None:
        self._set_state(run_id, state="failed", ended=now(), error=f"not started: {why}")

    def exited(self, run_id: str, returncode: int) -> None:
        """The job's process ended with `returncode`: how the job ended is read from its folder, and from the
        exit code when the trainer died before writing it."""
        folder, row = self._folder(run_id), self.index.get(run_id)
        if folder is None or row is None or row["state"] != "running":  # e.g. already resumed: queued again
            return
        self.index.update(run_id, **reconcile(folder, row, returncode))

    def _set_state(self, run_id: str, **values) -> None:
        """A state change made here, not read from the folder: the row is reconciled again at the next refresh
        (its folder may say more, e.g. damaged files, than the new state does)."""
        self.index.update(run_id, **values, folder_stamp=None)

    def _new_id(self, arch: str) -> str:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_id, n = f"{stamp}-{arch}", 1
        while run_path(self.runs_dir, run_id).exists() or self.index.exists(run_id):
            n += 1
            run_id = f"{stamp}-{arch}-{n}"
        return run_id

    # ------------------------------------------------------------------ reconciling with the run folders

    def refresh(self, unsaved: dict[str, dict] | None = None) -> None:
        """Bring the rows up to date from their run folders; adopt run folders made by the CLI.

        A row whose job has ended and whose folder has not changed since is left alone, so the Train page's
        poll reads only a few file sizes and times per finished run, and writes nothing while nothing changes.
        Updates the index cannot take (a full or read-only disk) go to `unsaved` (id -> columns) when given."""
        self.not_saved = ""

        def write(run_id: str, store, values: dict, shown_as: dict | None = None) -> None:
            try:
                store(**values)
            except sqlite3.OperationalError as exc:
                if unsaved is None:
                    raise
                self.not_saved = f"the run registry could not be updated ({exc})"
                unsaved.setdefault(run_id, {}).update(shown_as or values)

        rows = {r["id"]: r for r in self.index.rows()}
        for folder in sorted(p for p in self.runs_dir.iterdir() if p.is_dir() and RunFolder(p).is_run()):
            if folder.name not in rows and self._folder(folder.name) is not None:
                adopted = adopted_row(folder)
                write(folder.name, partial(self.index.insert, if_absent=True), adopted, _full_row(adopted))
                row = self.index.get(folder.name) or (unsaved or {}).get(folder.name)
                if row is not None:  # None: deleted from another tab meanwhile
                    rows[folder.name] = row
        for run_id, row in rows.items():
            folder = self._folder(run_id)
            if folder is None:  # a damaged row can never run: make it deletable
                if row["state"] in ACTIVE:
                    values = dict(state="failed", ended=now(), error=BAD_ROW, folder_stamp=None)
                    write(run_id, partial(self.index.update, run_id), values)
                continue
            if row["state"] == "queued" or is_settled(row, folder):
                continue
            write(run_id, partial(self.index.update, run_id), reconcile(folder, row))


def _full_row(values: dict) -> dict:
    """An index row with the columns `values` leaves out at their defaults (as the table's schema gives them)."""
    defaults = dict(sweep=None, gpus=1, resume=0, pid=None, started=None, ended=None, epochs=None, epochs_done=0,
                    best_val_accuracy=None, test_accuracy=None, test_accuracy_tta=None, error=None, folder_stamp=None)
    return {**defaults, **values}


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
