"""The Compare page's worker thread: progress while a task runs, its result once, failures shown not
retried, queued tasks nobody asks for cancelled."""
from __future__ import annotations

import threading
import time

import pytest

import dashboard.shared.background as background
from dashboard.shared.background import Task, TaskPool


def _gated(event: threading.Event, progress):
    progress(1, 4)
    assert event.wait(10)
    progress(4, 4)
    return "result"


def _until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_task_reports_progress_then_its_result_and_is_shared_by_key():
    pool, release = TaskPool(), threading.Event()
    task, fresh = pool.submit("k", "slow", _gated, release)
    assert fresh
    _until(lambda: task.done == 1)
    assert task.fraction == 0.25 and not task.future.done() and "slow: 25%" in task.describe()
    assert pool.submit("k", "slow", _gated, release) == (task, False)  # asked again: the same task
    release.set()
    assert task.future.result(10) == "result" and task.fraction == 1.0


def test_a_failed_task_is_reported_every_time_and_not_run_again(monkeypatch):
    monkeypatch.setattr(background, "_POOL", TaskPool())
    calls = []

    def broken(progress):
        calls.append(1)
        raise OSError("disk full")
    for _ in range(2):
        with pytest.raises(OSError, match="disk full"):
            background.run_in_background("k", "broken", broken)
    assert len(calls) == 1


def test_a_result_is_handed_over_once_then_forgotten(monkeypatch):
    monkeypatch.setattr(background, "_POOL", TaskPool())
    calls = []

    def quick(progress):
        calls.append(1)
        return len(calls)
    assert background.run_in_background("k", "quick", quick) == 1
    assert background.run_in_background("k", "quick", quick) == 2  # the caller keeps results; asked again, it runs


def test_a_queued_task_nobody_asks_for_is_cancelled(monkeypatch):
    pool, release = TaskPool(), threading.Event()
    blocker, _ = pool.submit("blocker", "busy", _gated, release)
    waiting, fresh = pool.submit("old", "queued", _gated, release)
    assert not fresh and "queued" in waiting.describe()  # the worker is busy: no point waiting for it
    monkeypatch.setattr(background, "FORGOTTEN_S", 0.0)
    blocker.asked = time.monotonic() + 60  # the running one is still wanted
    pool.submit("new", "asked for now", _gated, release)
    assert waiting.future.cancelled()
    release.set()
    assert blocker.future.result(10) == "result"


def test_progress_text_estimates_time_left():
    task = Task("predicting", started=time.monotonic())
    assert task.fraction == 0.0 and "0%" in task.describe()
    task.report(1, 2)
    assert "50%" in task.describe() and "to go" in task.describe()
