"""Long evaluations the Compare page hands to a worker thread, so the page never blocks on them.

One worker per Streamlit server process, shared by all sessions: a task keeps running while its
user reruns the page or leaves it, and whoever asks for the same key next gets its result. A page
waits a moment for a task first, so quick ones (small datasets, cached predictions) show at once.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import streamlit as st

QUICK_WAIT_S = 2.0  # how long a page waits for a task before it shows progress instead


@dataclass
class Task:
    label: str
    future: Future | None = None
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)

    def report(self, done: int, total: int) -> None:  # called from the worker thread
        self.done, self.total = done, total

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def describe(self) -> str:
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

    def submit(self, key: str, label: str, fn, *args) -> Task:
        """The task for `key`: the running or finished one, or a new one calling fn(*args, progress=...)."""
        with self._lock:
            task = self._tasks.get(key)
            if task is None or (task.future.done() and task.future.exception() is not None):
                task = Task(label)  # a failed task is retried when asked for again
                task.future = self._executor.submit(fn, *args, progress=task.report)
                self._tasks[key] = task
            return task

    def forget(self, key: str) -> None:
        with self._lock:
            self._tasks.pop(key, None)


@st.cache_resource
def task_pool() -> TaskPool:
    return TaskPool()


def result_or_progress(task: Task):
    """The task's result when it is done within QUICK_WAIT_S (its exception is raised here);
    otherwise None after showing its progress, and the page reruns itself when the task ends."""
    try:
        return task.future.result(timeout=QUICK_WAIT_S)
    except TimeoutError:
        pass
    _progress_until_done(task)
    return None


def _progress_until_done(task: Task) -> None:
    @st.fragment(run_every=1.0)
    def progress():
        if task.future.done():
            st.rerun(scope="app")
        st.progress(task.fraction, text=task.describe() + " (runs on if you leave this page)")
    progress()
