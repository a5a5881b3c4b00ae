"""The run index: one row per training job in an SQLite table beside the run folders (`registry.sqlite`, WAL mode).

Only storage: rows in, rows out. What a row should say is decided elsewhere, by reading the run's folder
(reconcile.py); who starts and stops jobs is the registry's business (runs.py).
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

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
    config TEXT NOT NULL,
    folder_stamp TEXT                 -- sizes and mtimes of the run files when the row was last brought up to date
);
"""
_ADDED_COLUMNS = {"folder_stamp": "TEXT"}  # columns newer than some existing registry files


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
    folder_stamp: str | None = None
    run_dir: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["config"] = json.loads(self.config)
        del d["folder_stamp"]
        return d


class RunIndex:
    """Reads work on a full or read-only disk too (the index is then opened read-only); writes raise
    sqlite3.OperationalError there, which the registry turns into a message."""

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        try:
            self._create()
        except sqlite3.OperationalError:
            if not self.db_path.is_file():  # nothing to read either
                raise

    def _create(self) -> None:
        with self._db() as db:
            db.executescript(_SCHEMA)
            have = {r["name"] for r in db.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:
                    try:
                        db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise

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

    def _read(self, query: str, args: tuple = ()) -> list[sqlite3.Row]:
        try:
            with self._db() as db:
                return db.execute(query, args).fetchall()
        except sqlite3.OperationalError:  # a full or read-only disk: WAL mode cannot open its files there
            db = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?immutable=1", uri=True)
            db.row_factory = sqlite3.Row
            try:
                return db.execute(query, args).fetchall()
            finally:
                db.close()

    def rows(self) -> list[sqlite3.Row]:
        """Every row, newest first."""
        return self._read("SELECT * FROM runs ORDER BY created DESC, id DESC")

    def get(self, run_id: str) -> sqlite3.Row | None:
        found = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        return found[0] if found else None

    def exists(self, run_id: str) -> bool:
        return self.get(run_id) is not None

    def queued(self, slot: str) -> list[str]:
        """Ids of the jobs waiting for `slot`, oldest first."""
        return [r["id"] for r in self._read(
            "SELECT id FROM runs WHERE state = 'queued' AND slot = ? ORDER BY created, id", (slot,))]

    def insert(self, *, if_absent: bool = False, **values) -> None:
        """A new row; raises sqlite3.IntegrityError when the id is taken, unless `if_absent` (then nothing)."""
        cols = ", ".join(values)
        verb = "INSERT OR IGNORE" if if_absent else "INSERT"
        with self._db() as db:
            db.execute(f"{verb} INTO runs ({cols}) VALUES ({', '.join('?' * len(values))})", tuple(values.values()))

    def update(self, run_id: str, **values) -> None:
        if not values:
            return
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*values.values(), run_id))

    def delete(self, run_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
