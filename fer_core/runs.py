"""The run registry: one row per training job in an SQLite index, reconciled with the run folders.

Each run is a folder under the runs directory (run_folder.py) plus a row in an SQLite index beside them
(`registry.sqlite`, WAL mode), so every dashboard tab and `python -m fer_core runs list` see the same
state, and it survives restarts. Jobs are started by the worker in jobs.py (one process per job, one at a
time per device slot); reading the folders, this module decides how each ended. A job whose process
vanished without finishing is shown as interrupted, never running.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from .errors import FERError
from .paths import runs_dir
from .run_folder import (RunNameError, load_eval, load_metrics, load_status, log_tail, now, read_json, run_path,
                         trainer_alive, trainer_pid)
from .train_config import TrainConfig

ACTIVE = ("queued", "running")
DAMAGED = "damaged run files: "
BAD_ROW = "this registry row names no valid run folder: it can only be deleted"
STATES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    arch TEXT NOT NULL,
    state TEXT NOT NULL,
    slot TEXT NOT NULL,               -- device slot the worker schedules on: "cpu" or "cuda"
    sweep TEXT,                       -- the hyperparameter sweep this run belongs to, if any
    gpus INTEGER NOT NULL DEFAULT 1,
    resume INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    created TEXT NOT NULL,
    started TEXT,
    ended TEXT,
    epochs INTEGER,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    best_val_accuracy REAL,
    test_accuracy REAL,
    test_accuracy_tta REAL,
    error TEXT,
    config TEXT NOT NULL
);
"""


@dataclass
class Run:
    id: str
    arch: str
    state: str
    slot: str
    sweep: str | None
    gpus: int
    resume: int
    pid: int | None
    created: str
    started: str | None
    ended: str | None
    epochs: int | None
    epochs_done: int
    best_val_accuracy: float | None
    test_accuracy: float | None
    test_accuracy_tta: float | None
    error: str | None
    config: str
    run_dir: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["config"] = json.loads(self.config)
        return d


def _pid_alive(pid: int | None) -> bool:
    """True when `pid` is a live (non-zombie) fer_core process: a recycled PID does not count."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"fer_core" in cmdline


class Registry:
    def __init__(self, folder: str | os.PathLike | None = None):
        self.runs_dir = Path(folder or runs_dir())
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.runs_dir / "registry.sqlite"
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self):
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        finally:
            db.close()

    # ------------------------------------------------------------------ reading

    def _folder(self, run_id: str) -> Path | None:
        """The run's folder, or None for an id that is no plain folder name (a damaged registry row)."""
        try:
            return run_path(self.runs_dir, run_id)
        except RunNameError:
            return None

    def _run(self, row) -> Run:
        folder = self._folder(row["id"])
        run = Run(**dict(row), run_dir=str(folder or ""))
        if folder is None:
            run.error = BAD_ROW
        return run

    def list(self, refresh: bool = True) -> list[Run]:
        """Every run, newest first; `refresh` first reconciles the index with the run folders."""
        if refresh:
            self.refresh()
        with self._db() as db:
            return [self._run(r) for r in db.execute("SELECT * FROM runs ORDER BY created DESC, id DESC")]

    def get(self, run_id: str) -> Run:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
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
        if run_path(self.runs_dir, run_id).exists() or self._exists(run_id):
            raise taken
        config = TrainConfig(**{**asdict(config), "name": run_id, "out": str(self.runs_dir)})
        slot = "cuda" if config.device.startswith("cuda") or (config.device == "auto" and _cuda_available()) else "cpu"
        try:
            with self._db() as db:
                db.execute("INSERT INTO runs (id, arch, state, slot, sweep, gpus, created, epochs, config) "
                           "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                           (run_id, config.arch, slot, sweep, gpus, now(), config.epochs, json.dumps(asdict(config))))
        except sqlite3.IntegrityError:  # another tab took the name since the check above
            raise taken from None
        if start_worker:
            from .jobs import ensure_worker  # the worker's module imports this one
            ensure_worker(self.runs_dir, slot)
        return run_id

    def submit_sweep(self, base: TrainConfig, grid: dict[str, list], name: str | None = None, **kw) -> list[str]:
        """One queued job per combination of the values in `grid` (one or two options), grouped as a sweep."""
        if not 1 <= len(grid) <= 2 or not all(grid.values()):
            raise ValueError("a sweep varies one or two options, each with at least one value")
        sweep = name or f"sweep-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        combos: list[dict] = [{}]
        for key, values in grid.items():
            combos = [{**c, key: v} for c in combos for v in values]
        configs = [TrainConfig(**{**asdict(base), **combo, "name": None}) for combo in combos]
        for c in configs:
            c.validate()  # refuse the whole sweep before queueing any of it
        return [self.submit(c, sweep=sweep, **kw) for c in configs]

    def cancel(self, run_id: str) -> None:
        """Stop a job cleanly: a queued job never starts; a running one gets SIGTERM and keeps last.pt."""
        run = self.get(run_id)
        if run.state == "queued":
            self._set(run_id, state="cancelled", ended=now())
        elif run.state == "running" and _pid_alive(run.pid):
            # Jobs lead their own process group: torchrun and its workers all get the signal.
            if _is_group_leader(run.pid):
                os.killpg(run.pid, signal.SIGTERM)
            else:
                os.kill(run.pid, signal.SIGTERM)
        else:
            raise FERError(f"run '{run_id}' is {run.state}: nothing to cancel")

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
        if not (folder / "config.json").exists():
            raise FERError(f"run '{run_id}' never started (no config.json): start a new run instead")
        self._set(run_id, state="queued", resume=1, error=None, ended=None, pid=None)
        from .jobs import ensure_worker
        ensure_worker(self.runs_dir, run.slot)

    def delete(self, run_id: str) -> None:
        """Remove the run's folder and its row; a row that names no folder inside the runs folder loses only the row."""
        run = self.get(run_id)
        folder = self._folder(run_id)
        if (run.state == "running" and _pid_alive(run.pid)) or (folder is not None and trainer_alive(folder)):
            raise FERError(f"run '{run_id}' is running: cancel it first")
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # ------------------------------------------------------------------ for the worker

    def queued(self, slot: str) -> list[str]:
        """Ids of the jobs waiting for `slot`, oldest first."""
        with self._db() as db:
            return [r["id"] for r in db.execute(
                "SELECT id FROM runs WHERE state = 'queued' AND slot = ? ORDER BY created, id", (slot,))]

    def started(self, run_id: str, pid: int) -> None:
        self._set(run_id, state="running", pid=pid, started=now(), error=None)

    def not_started(self, run_id: str, why: str) -> None:
        self._set(run_id, state="failed", ended=now(), error=f"not started: {why}")

    def exited(self, run_id: str, returncode: int) -> None:
        """The job's process ended with `returncode`: how the job ended is read from its folder, and from the
        exit code when the trainer died before writing it."""
        folder = self._folder(run_id)
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if folder is None or row is None or row["state"] != "running":  # e.g. already resumed: queued again
            return
        update = self._from_folder(folder, row, returncode)
        if update:
            self._set(run_id, **update)

    def _set(self, run_id: str, **values) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*values.values(), run_id))

    def _new_id(self, arch: str) -> str:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_id, n = f"{stamp}-{arch}", 1
        while run_path(self.runs_dir, run_id).exists() or self._exists(run_id):
            n += 1
            run_id = f"{stamp}-{arch}-{n}"
        return run_id

    def _exists(self, run_id: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    # ------------------------------------------------------------------ reconciling with the run folders

    def refresh(self) -> None:
        """Bring every row up to date from its run folder; adopt run folders made by the CLI."""
        with self._db() as db:
            rows = {r["id"]: r for r in db.execute("SELECT * FROM runs")}
        for folder in sorted(p for p in self.runs_dir.iterdir() if p.is_dir() and (p / "config.json").exists()):
            if folder.name not in rows and self._folder(folder.name) is not None:
                self._adopt(folder)
        for run_id, row in rows.items():
            folder = self._folder(run_id)
            if folder is None:  # a damaged row can never run: make it deletable
                if row["state"] in ACTIVE:
                    self._set(run_id, state="failed", ended=now(), error=BAD_ROW)
                continue
            if row["state"] == "queued":
                continue
            update = self._from_folder(folder, row)
            if update:
                self._set(run_id, **update)

    def _adopt(self, folder: Path) -> None:
        config = read_json(folder / "config.json")
        status, _ = load_status(folder / "status.json")
        slot = "cuda" if "CPU" not in status.get("device", "CPU") else "cpu"
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO runs (id, arch, state, slot, created, started, epochs, pid, config) "
                       "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                       (folder.name, config.get("arch", "?"), slot, status.get("started") or now(),
                        status.get("started"), config.get("epochs"), status.get("pid"), json.dumps(config)))
            row = db.execute("SELECT * FROM runs WHERE id = ?", (folder.name,)).fetchone()
        update = self._from_folder(folder, row)
        if update:
            self._set(folder.name, **update)

    def _from_folder(self, folder: Path, row, returncode: int | None = None) -> dict:
        """What the run folder says that the row does not: progress, results, and how the job ended.

        The one place that decides how a job ended. The folder is the truth once a trainer has written it,
        so a run resumed or finished from the CLI is seen as it is; when the trainer died before saying
        how, the launcher's `returncode` (known to the worker) does. A damaged file is named in the row's
        error, the rest still shows."""
        status, status_problem = load_status(folder / "status.json")
        metrics, metrics_problem = load_metrics(folder / "metrics.jsonl")
        evaluation, eval_problem = load_eval(folder / "eval.json")
        update: dict = {"epochs_done": len(metrics),
                        "best_val_accuracy": max((m["val_accuracy"] for m in metrics), default=None),
                        "test_accuracy": evaluation["test"]["plain"]["accuracy"] if evaluation else None,
                        "test_accuracy_tta": evaluation["test"]["tta"]["accuracy"] if evaluation else None}
        state = status.get("state")
        training = trainer_alive(folder)
        if training and row["state"] != "running":  # a trainer started outside the registry (CLI --resume)
            update.update(state="running", pid=trainer_pid(folder), started=now(), ended=None, error=None)
        elif training and not _pid_alive(row["pid"]):  # cancel must reach the process that trains
            update["pid"] = trainer_pid(folder) or row["pid"]
        elif row["state"] == "running" and not training:
            # The launcher's PID (torchrun, for several GPUs) and the trainer's own, from status.json.
            alive = returncode is None and (_pid_alive(row["pid"]) or _pid_alive(status.get("pid")))
            # status.json of this job's trainer, not one left by an earlier attempt (a resume not yet started):
            # a trainer writes its start time after the registry launched it (for an adopted run, the same)
            fresh = (status.get("started") or "") >= (row["started"] or "")
            log = log_tail(folder / "train.log", 3)
            if state in ("finished", "failed", "cancelled") and fresh:
                update.update(state=state, ended=status.get("updated") or now(), error=status.get("error"))
            elif not alive and returncode is not None and returncode < 0:  # a signal: SIGKILL, the OOM killer
                update.update(state="interrupted", ended=now(), error=f"killed by signal {-returncode} after epoch "
                              f"{len(metrics)}" + (f"; last log lines: {log}" if log else ""))
            elif not alive and returncode:
                update.update(state="failed", ended=now(), error=f"exit code {returncode}: {log}")
            elif not alive and (not status or not fresh) and not status_problem:  # died before training
                update.update(state="failed", ended=now(),
                              error=log_tail(folder / "train.log", 3) or "the job ended before training started")
            elif not alive:
                update.update(state="interrupted", ended=now(),
                              error=status.get("error") or _interruption_note(folder, len(metrics)))
        elif (not training and state in ("finished", "failed", "cancelled") and state != row["state"]
              and status.get("updated", "") >= max(row["ended"] or "", row["started"] or "")):
            # it ended outside the registry (a CLI --resume) after the registry last saw it
            update.update(state=state, ended=status.get("updated"), error=status.get("error"))
        # the damage is named first; how the job ended, when known, follows after " | "
        damage = "; ".join(p for p in (status_problem, metrics_problem, eval_problem) if p)
        reason = update.get("error", row["error"]) or ""
        if reason.startswith(DAMAGED):
            reason = reason.partition(" | ")[2]
        update["error"] = (DAMAGED + damage + (f" | {reason}" if reason else "")) if damage else (reason or None)
        return {k: v for k, v in update.items() if row[k] != v}


def _interruption_note(folder: Path, epochs_done: int) -> str:
    tail = log_tail(folder / "train.log", 3)
    note = f"the training process ended without finishing (killed, out of memory or machine restarted) after epoch {epochs_done}"
    return f"{note}; last log lines: {tail}" if tail else note


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False
