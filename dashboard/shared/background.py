"""Long evaluations the Compare page hands to a worker thread, so the page never blocks on them.

One worker per server process, shared by all sessions: a task keeps running while its user reruns
the page or leaves it, and whoever asks for the same key next gets its result. A new task that
has the worker to itself is waited for a moment, so quick ones (small datasets) show at once.
Keys name the exact file versions a task reads, so a failure is shown, not retried, until a file
changes; a queued task nobody has asked for lately (its page moved on) is cancelled.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import streamlit as st

# how long a page waits for a new task before it shows progress instead (the browser tests set 0)
QUICK_WAIT_S = float(os.environ.get("FER_QUICK_WAIT_S", "2"))
FORGOTTEN_S = 30.0    # a queued task not asked for in this long is cancelled


@dataclass
class Task:
    label: str
    future: Future | None = None
    done: int = 0
    total: int = 0
    started: float | None = None      # when the worker began it (None while queued)
    error: Exception | None = None    # what it raised, kept without its traceback
    asked: float = field(default_factory=time.monotonic)

    def report(self, done: int, total: int) -> None:  # called from the worker thread
        self.done, self.total = done, total

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def describe(self) -> str:
        if self.started is None:
            return f"{self.label}: queued behind another evaluation"
        elapsed = time.monotonic() - self.started
        text = f"{self.label}: {self.fraction:.0%} after {elapsed:.0f} s"
        if 0 < self.fraction < 1:
            text += f", about {elapsed * (1 - self.fraction) / self.fraction:.0f} s to go"
        return text


class TaskPool:
    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fer-evaluate")
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, label: str, fn, *args) -> tuple[Task, bool]:
        """(task for `key`, whether it is new and has the worker to itself); new tasks call
        fn(*args, progress=...)."""
        with self._lock:
            now = time.monotonic()
            for old_key, old in list(self._tasks.items()):
                if old_key != key and now - old.asked > FORGOTTEN_S and old.future.cancel():
                    del self._tasks[old_key]
            task = self._tasks.get(key)
            if task is not None:
                task.asked = now
                return task, False
            idle = all(t.future.done() for t in self._tasks.values())
            task = self._tasks[key] = Task(label)
            task.future = self._executor.submit(_run, task, fn, args)
            return task, idle

    def forget(self, key: str) -> None:
        with self._lock:
            self._tasks.pop(key, None)


def _run(task: Task, fn, args):
    task.started = time.monotonic()
    try:
        return fn(*args, progress=task.report)
    except Exception as exc:  # any failure of the task is shown on its page, never kills the worker thread
        task.error = exc.with_traceback(None)  # its frames would keep the dataset and the model alive
        return None


_POOL = TaskPool()  # module level: one worker per process, untouched by "Clear cache"


def task_pool() -> TaskPool:
    return _POOL


def run_in_background(key: str, label: str, fn, *args):
    """fn(*args)'s result once it is done (its exception is raised here, every time it is asked for);
    else None after showing its progress, and the page reruns itself when it ends.

    A successful result is handed over once and forgotten: callers keep it (on disk or in the session).
    """
    pool = task_pool()
    task, fresh = pool.submit(key, label, fn, *args)
    finished, _ = wait([task.future], timeout=QUICK_WAIT_S if fresh else 0)
    if finished:
        if task.error is not None:
            raise task.error
        pool.forget(key)
        return task.future.result()
    with st.container():  # its own container: the fragment's id is unique per call
        _progress_until_done(task)
    return None


def _progress_until_done(task: Task) -> None:
    @st.fragment(run_every=1.0)
    def progress():
        task.asked = time.monotonic()
        if task.future.done():
            st.rerun(scope="app")
        st.progress(task.fraction, text=task.describe() + " (runs on if you leave this page)")
    progress()
