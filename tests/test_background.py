"""The Compare page's worker thread: progress while a task runs, its result after, a failure retried."""
from __future__ import annotations

import threading

import pytest

from dashboard.background import Task, TaskPool


def _wait_for(event: threading.Event, progress):
    progress(1, 4)
    assert event.wait(10)
    progress(4, 4)
    return "result"


def test_a_task_reports_progress_then_its_result_and_is_shared_by_key():
    pool, release = TaskPool(), threading.Event()
    task = pool.submit("k", "slow", _wait_for, release)
    while task.done == 0:
        pass
    assert task.fraction == 0.25 and not task.future.done() and "slow: 25%" in task.describe()
    assert pool.submit("k", "slow", _wait_for, release) is task  # asked again: the same task, not a new one
    release.set()
    assert task.future.result(10) == "result" and task.fraction == 1.0


def test_a_failed_task_is_retried_when_asked_for_again():
    pool, calls = TaskPool(), []

    def flaky(progress):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return "ok"
    with pytest.raises(OSError):
        pool.submit("k", "flaky", flaky).future.result(10)
    assert pool.submit("k", "flaky", flaky).future.result(10) == "ok" and len(calls) == 2


def test_progress_text_estimates_time_left():
    task = Task("predicting")
    assert task.fraction == 0.0 and "0%" in task.describe()
    task.report(1, 2)
    assert "50%" in task.describe() and "to go" in task.describe()
