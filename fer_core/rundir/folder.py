"""The run folder: where a run lies, the lock of the one trainer that writes it, and its files,
written and read here only.

A run folder holds config.json, status.json, metrics.jsonl (one line per epoch), eval.json, best.pt,
last.pt and the launcher's train.log. Every path to one goes through `run_path` (the gate in paths.py),
so no name (typed by a user or read from a damaged registry) can point outside the runs folder. Readers
treat a file that lacks a field like a damaged one: they return what is usable and say what is wrong.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import FERError
from ..labels import EMOTIONS
from ..models.checkpoints import load_checkpoint, save_checkpoint
from ..paths import StorageError, UnsafePathError, named_path, shown, storage_error, write_text_atomic

LOCK_FILE = "trainer.lock"
METRIC_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "images_per_s")
_REPORT_NUMBERS = ("n", "accuracy", "macro_f1")


class RunBusyError(FERError):
    """Another process is training this run."""


# ----------------------------------------------------------------------------- names and paths

def run_path(runs_dir: str | os.PathLike, name: str) -> Path:
    """The folder of run `name` inside `runs_dir`: the name checked and the folder confined to `runs_dir`
    (BadNameError, UnsafePathError), whether the name was typed by a user or read from a damaged registry."""
    path = named_path(runs_dir, name, what="run name")
    if path.resolve().parent != Path(runs_dir).resolve():  # e.g. a symlink planted in the runs folder
        raise UnsafePathError(f"run folder {shown(path)} points outside the runs folder {shown(runs_dir)}")
    return path


# ----------------------------------------------------------------------------- one trainer per run

class TrainerLock:
    """An exclusive lock on the run folder, held by its trainer for the whole training.

    It is an flock, so it ends with the process however the process ends; a second trainer
    (a CLI `--resume` beside the dashboard's Resume) is refused instead of writing the same files."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_FILE
        self._fh = None

    def acquire(self, wait_s: float = 2.0) -> "TrainerLock":
        """Take the lock, or raise RunBusyError; waits `wait_s` for readers' brief probes (trainer_alive)."""
        try:
            fh = open(self.path, "a+")
        except OSError as exc:
            raise storage_error(exc, "opening", self.path) from None
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            raise RunBusyError(f"run {self.path.parent.name} is already being trained"
                               f"{f' by process {holder}' if holder else ''}: wait for it to end, "
                               f"or cancel it first") from None
        self._fh = fh
        try:  # the PID is for messages and `runs cancel`; the lock itself is what counts
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
        except OSError:  # a full disk: training fails at its first real write, with a clear line
            pass
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "TrainerLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def trainer_pid(run_dir: str | os.PathLike) -> int | None:
    """The process id written by the lock's holder (None when unreadable)."""
    try:
        return int((Path(run_dir) / LOCK_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
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


def lock_holder(run_dir: str | os.PathLike) -> int | None:
    """The PID of the process holding the run's trainer lock, or None when no process holds it.

    Read from the kernel's lock table (/proc/locks), so neither a PID in a registry row nor one written in
    the lock file can make `runs cancel` signal a process that is not this run's trainer. File systems whose
    lock table names another device than stat does (btrfs subvolumes, some overlays) are matched by inode and
    the PID the lock file names; without a table, that PID counts only while the lock is held and it lives."""
    path = Path(run_dir) / LOCK_FILE
    named = trainer_pid(run_dir)
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return named if trainer_alive(run_dir) and pid_alive(named) else None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    same_inode = []
    for line in table.splitlines():  # "1: FLOCK  ADVISORY  WRITE 4242 00:2a:1234 0 EOF"; waiters have "->"
        fields = line.split()
        if len(fields) < 6 or "->" in fields or fields[1] != "FLOCK" or not fields[5].endswith(f":{st.st_ino}"):
            continue
        if fields[5] == f"{device}:{st.st_ino}":
            return int(fields[4])
        same_inode.append(int(fields[4]))
    return named if named in same_inode and trainer_alive(run_dir) else None


def trainer_alive(run_dir: str | os.PathLike) -> bool:
    """True while some process holds the run's trainer lock."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fh = open(path)
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


# ----------------------------------------------------------------------------- reading the files

def read_json(path: Path) -> dict:
    """A run file's JSON object, or {} while it is missing or half-written."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_metrics(path: Path, writing: bool = True) -> tuple[list[dict], str]:
    """The epoch lines of metrics.jsonl up to the first damaged one, and what is wrong ('' if nothing).

    While a trainer is `writing`, an unreadable last line is the one being written right now, not damage."""
    try:
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError:
        return [], ""
    out = []
    for number, line in enumerate(lines, 1):
        try:
            value = json.loads(line)
        except ValueError:
            return out, "" if writing and number == len(lines) else f"metrics.jsonl line {number} is not JSON"
        missing = [f for f in METRIC_FIELDS if not _is_number(value.get(f) if isinstance(value, dict) else None)]
        if missing:
            return out, f"metrics.jsonl line {number} lacks {', '.join(missing)}"
        out.append(value)
    return out, ""


def read_metrics(path: Path) -> list[dict]:
    return load_metrics(path)[0]


def report_problem(report) -> str:
    """'' for a complete metrics report (what evaluate.metrics_report makes), else what it lacks."""
    if not isinstance(report, dict):
        return "is missing"
    missing = [k for k in _REPORT_NUMBERS if not _is_number(report.get(k))]
    per_class = report.get("per_class")
    if not isinstance(per_class, dict) or not all(isinstance(per_class.get(e), dict) and _is_number(
            per_class[e].get("recall")) for e in EMOTIONS):
        missing.append("per_class")
    matrix = report.get("confusion_matrix")
    if not (isinstance(matrix, list) and len(matrix) == len(EMOTIONS)
            and all(isinstance(row, list) and len(row) == len(EMOTIONS) for row in matrix)):
        missing.append("confusion_matrix")
    return f"lacks {', '.join(missing)}" if missing else ""


def evaluation_problem(evaluation: dict) -> str:
    """'' when val and test each have a complete plain and TTA report, else the first gap."""
    for split in ("val", "test"):
        for mode in ("plain", "tta"):
            block = evaluation.get(split)
            problem = report_problem(block.get(mode) if isinstance(block, dict) else None)
            if problem:
                return f"{split}.{mode} {problem}"
    return ""


def load_eval(path: Path) -> tuple[dict, str]:
    """eval.json when it is complete, else {} and what is wrong ({} and '' while it does not exist yet)."""
    evaluation = read_json(path)
    if not evaluation:
        return {}, ("eval.json is not a JSON object" if Path(path).is_file() and Path(path).stat().st_size else "")
    problem = evaluation_problem(evaluation)
    return ({}, f"eval.json: {problem}") if problem else (evaluation, "")


def load_status(path: Path) -> tuple[dict, str]:
    """status.json with a usable state and pid, else {} and what is wrong."""
    status = read_json(path)
    if not status:
        return {}, ("status.json is damaged" if Path(path).is_file() and Path(path).stat().st_size else "")
    text_fields = ("state", "updated", "started", "error", "device")
    if (not all(isinstance(status.get(f), (str, type(None))) for f in text_fields)
            or not isinstance(status.get("pid"), (int, type(None))) or isinstance(status.get("pid"), bool)):
        return {}, "status.json has a field of the wrong kind"
    return status, ""


_PROGRESS_BAR = re.compile(r"\d+%\|| \d+/\d+ \[\d|[0-9.?]+(?:it|batch)/s")


def log_tail(path: Path, lines: int) -> str:
    """The last `lines` log lines that are not progress-bar redraws, joined on one line."""
    try:
        text = Path(path).read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return ""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip() and not _PROGRESS_BAR.search(ln)]
    return " | ".join(kept[-lines:])[-600:]


# ----------------------------------------------------------------------------- writing

def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_status(run_dir: Path, **fields_) -> None:
    path = run_dir / RunFolder.STATUS
    status = read_json(path)  # a damaged status.json is replaced, not fatal
    status.update(fields_, updated=now())
    write_text_atomic(path, json.dumps(status, indent=2))


def new_run_dir(runs_dir: str | os.PathLike, name: str | None, arch: str) -> Path:
    """A new, empty run folder: `name`, or a timestamp and the architecture."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = run_path(runs_dir, name or f"{stamp}-{arch}")
    if run_dir.exists() and any(p.name != RunFolder.LOG for p in run_dir.iterdir()):  # the launcher's log may be there
        raise FERError(f"run folder {run_dir} already exists: choose another --name, or --resume it")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, "creating the run folder", run_dir) from None
    return run_dir


def write_json(path: Path, data: dict) -> None:
    """Write a JSON file whole: readers never see half of it."""
    write_text_atomic(path, json.dumps(data, indent=2))


def append_metrics(run_dir: Path, line: dict) -> None:
    path = run_dir / RunFolder.METRICS
    try:
        with open(path, "a") as fh:
            fh.write(json.dumps(line) + "\n")
    except OSError as exc:
        raise storage_error(exc, "writing", path) from None


def truncate_metrics(path: Path, last_epoch: int, last_line: dict | None = None) -> None:
    """Drop metric lines of epochs after the resume point so every epoch is counted once; `last_line` (kept in
    last.pt) is the resume point's own line, put back when the process stopped before appending it."""
    kept = [m for m in load_metrics(path)[0] if m["epoch"] <= last_epoch]  # damaged lines are dropped too
    if last_line and last_line.get("epoch") == last_epoch and (not kept or kept[-1]["epoch"] < last_epoch):
        kept.append(last_line)
    if not kept and not path.exists():
        return
    write_text_atomic(path, "".join(json.dumps(m) + "\n" for m in kept))


def provenance() -> dict:
    """What a figure needs to be reproduced: the code's git commit (and whether it had local changes), torch."""
    import subprocess

    import torch

    from ..paths import PROJECT_ROOT

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": git("rev-parse", "HEAD"), "git_local_changes": bool(status) if status is not None else None,
            "torch": torch.__version__}


# ----------------------------------------------------------------------------- the owner of a run's files

class RunFolder:
    """One run's folder: the only place that names its files. Reads return (value, problem), where problem
    is '' for a usable file or one not written yet, and one clear line for a damaged or missing one."""

    CONFIG, STATUS, METRICS, EVAL = "config.json", "status.json", "metrics.jsonl", "eval.json"
    BEST, LAST, LOG, LOCK = "best.pt", "last.pt", "train.log", LOCK_FILE
    STAMPED = (CONFIG, STATUS, METRICS, EVAL)  # what a registry row is read from
    RUN_FILES = (*STAMPED, BEST, LAST)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def named(cls, runs_dir: str | os.PathLike, name: str) -> "RunFolder":
        """Run `name` in `runs_dir`, through the gate (BadNameError, UnsafePathError)."""
        return cls(run_path(runs_dir, name))

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str | None, arch: str) -> "RunFolder":
        return cls(new_run_dir(runs_dir, name, arch))

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    @property
    def last(self) -> Path:
        return self.path / self.LAST

    @property
    def log_file(self) -> Path:
        return self.path / self.LOG

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    # ------------------------------------------------------------------ reading

    def is_run(self) -> bool:
        """True when any run file is here: a run whose config.json was lost still shows, as damaged."""
        return any((self.path / name).exists() for name in self.RUN_FILES)

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def missing(self, *names: str) -> list[str]:
        return [name for name in names if not self.has(name)]

    def config(self) -> tuple[dict, str]:
        config = read_json(self.path / self.CONFIG)
        if config:
            return config, ""
        return {}, f"{self.CONFIG} is damaged" if self.has(self.CONFIG) else f"{self.CONFIG} is missing"

    def status(self) -> tuple[dict, str]:
        return load_status(self.path / self.STATUS)

    def metrics(self, writing: bool | None = None) -> tuple[list[dict], str]:
        """The epoch lines; while a trainer is `writing` (default: while one holds the lock), a half-written
        last line is not damage."""
        return load_metrics(self.metrics_file, self.trainer_alive() if writing is None else writing)

    def evaluation(self) -> tuple[dict, str]:
        return load_eval(self.path / self.EVAL)

    def log_tail(self, lines: int) -> str:
        return log_tail(self.log_file, lines)

    def stamp(self) -> str:
        """Inode, size and change time of each file a row is read from. The trainer replaces its files whole
        (a new inode) or appends to them (a new size): an equal stamp means unchanged files."""
        parts = []
        for name in self.STAMPED:
            try:
                st = (self.path / name).stat()
                parts.append(f"{st.st_ino}:{st.st_size}:{st.st_ctime_ns}")
            except OSError:
                parts.append("-")
        return " ".join(parts)

    # ------------------------------------------------------------------ the trainer

    def lock(self) -> TrainerLock:
        return TrainerLock(self.path)

    def trainer_alive(self) -> bool:
        return trainer_alive(self.path)

    def trainer_pid(self) -> int | None:
        return trainer_pid(self.path)

    def lock_holder(self) -> int | None:
        return lock_holder(self.path)

    # ------------------------------------------------------------------ writing

    def write_config(self, config: dict) -> None:
        write_json(self.path / self.CONFIG, config)

    def update_status(self, **fields_) -> None:
        write_status(self.path, **fields_)

    def record_failure(self, error: str) -> None:
        """status.json says the run failed and why, even on a full disk (then written in place: it is small)."""
        try:
            self.update_status(state="failed", error=error[:2000])
        except StorageError:
            status = {**read_json(self.path / self.STATUS), "state": "failed", "error": error[:2000], "updated": now()}
            try:
                (self.path / self.STATUS).write_text(json.dumps(status))
            except OSError:
                pass  # nothing more can be written here; the exit code and the one-line error still say it

    def append_metrics(self, line: dict) -> None:
        append_metrics(self.path, line)

    def truncate_metrics(self, last_epoch: int, last_line: dict | None = None) -> None:
        truncate_metrics(self.metrics_file, last_epoch, last_line)

    def record_epoch(self, line: dict, last: dict, best: dict | None = None) -> None:
        """One finished epoch: best.pt when it improved, last.pt (the resume point), then its metrics line.
        In that order, a resume never counts an epoch twice, and re-appends the line if a stop lost it."""
        if best is not None:
            save_checkpoint(self.best, best)
        save_checkpoint(self.last, {**last, "metrics_line": line})
        self.append_metrics(line)

    def resume_point(self) -> dict | None:
        """last.pt's training state, or None before the first epoch ended."""
        return load_checkpoint(self.last) if self.last.exists() else None

    def write_evaluation(self, evaluation: dict) -> None:
        write_json(self.path / self.EVAL, evaluation)
