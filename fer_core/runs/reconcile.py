"""What a run's index row should say, read from its run folder: the one place that decides how a job ended.

The folder is the truth once a trainer has written it, so a run resumed or finished from the CLI is seen as
it is; when the trainer died before saying how, the launcher's exit code (known to the worker) does. A job
whose process vanished without finishing is interrupted, never running. Nothing here writes anything.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..rundir.folder import RunFolder, now, pid_alive
from ..training.config import TrialRef, TrialRefError

ACTIVE = ("queued", "running")
ENDED = ("finished", "failed", "cancelled", "pruned")  # what a trainer writes in status.json when it stops
DAMAGED = "damaged run files: "


def is_settled(row, folder: Path) -> bool:
    """True when reading the folder again would not change the row: the job has ended, no trainer has taken
    the folder up again (a CLI --resume), and the run files are those the row was last reconciled with (the
    registry clears a row's stamp whenever it changes the row's state itself)."""
    run = RunFolder(folder)
    return row["state"] not in ACTIVE and row["folder_stamp"] == run.stamp() and not run.trainer_alive()


def adopted_row(folder: Path) -> dict:
    """The index row of a run folder made outside the registry (the CLI), before reconciling it."""
    run = RunFolder(folder)
    config, _ = run.config()
    status, _ = run.status()
    return dict(id=folder.name, arch=config.get("arch", "?"), state="running",
                slot="cuda" if "CPU" not in status.get("device", "CPU") else "cpu",
                created=status.get("started") or now(), started=status.get("started"), epochs=config.get("epochs"),
                pid=status.get("pid"), config=json.dumps(config), sweep=study_of(config))


def study_of(config: dict) -> str | None:
    """The tuning study a run is a trial of (shown as its sweep), from its config's trial reference."""
    try:
        return TrialRef.parse(config["trial"]).study if config.get("trial") else None
    except (TrialRefError, TypeError):
        return None


def reconcile(folder: Path, row, returncode: int | None = None) -> dict:
    """The columns of `row` that the run folder contradicts, with their new values (empty when none).

    `returncode` is the job process's exit code, when the worker has just seen it end. A damaged file is
    named in the row's error; the rest still shows."""
    run = RunFolder(folder)
    stamp = run.stamp()  # before reading: a file that changes meanwhile is read again next time
    training = run.trainer_alive()
    status, status_problem = run.status()
    # a half-written last line is damage only when no trainer is writing it
    metrics, metrics_problem = run.metrics(writing=training)
    evaluation, eval_problem = run.evaluation()
    _, config_problem = run.config()
    if row["state"] in ACTIVE and config_problem.endswith("is missing") and not status and not status_problem:
        config_problem = ""  # a job still starting: its trainer writes config.json (then status.json) once loaded
    update: dict = {"epochs_done": len(metrics),
                    "best_val_accuracy": max((m["val_accuracy"] for m in metrics), default=None),
                    "test_accuracy": evaluation["test"]["plain"]["accuracy"] if evaluation else None,
                    "test_accuracy_tta": evaluation["test"]["tta"]["accuracy"] if evaluation else None,
                    "folder_stamp": stamp}
    state = status.get("state")
    if training and row["state"] != "running":  # a trainer started outside the registry (CLI --resume)
        update.update(state="running", pid=run.trainer_pid(), started=now(), ended=None, error=None)
    elif training and not pid_alive(row["pid"]):  # cancel must reach the process that trains
        update["pid"] = run.trainer_pid() or row["pid"]
    elif row["state"] == "running" and not training:
        update.update(_how_it_ended(run, row, status, status_problem, len(metrics), returncode))
    elif (not training and state in ENDED and state != row["state"]
          and status.get("updated", "") >= max(row["ended"] or "", row["started"] or "")):
        # it ended outside the registry (a CLI --resume) after the registry last saw it
        update.update(state=state, ended=status.get("updated"), error=status.get("error"))
    # the damage is named first; how the job ended, when known, follows after " | "
    damage = "; ".join(p for p in (config_problem, status_problem, metrics_problem, eval_problem) if p)
    reason = update.get("error", row["error"]) or ""
    if reason.startswith(DAMAGED):
        reason = reason.partition(" | ")[2]
    update["error"] = (DAMAGED + damage + (f" | {reason}" if reason else "")) if damage else (reason or None)
    return {k: v for k, v in update.items() if row[k] != v}


def _how_it_ended(run: RunFolder, row, status: dict, status_problem: str, epochs_done: int,
                  returncode: int | None) -> dict:
    """The end of a job the row shows running and no trainer holds any more (empty while its launcher lives)."""
    state = status.get("state")
    # status.json of this job's trainer, not one left by an earlier attempt (a resume not yet started):
    # a trainer writes its start time after the registry launched it (for an adopted run, the same)
    fresh = (status.get("started") or "") >= (row["started"] or "")
    if state in ENDED and fresh:
        return dict(state=state, ended=status.get("updated") or now(), error=status.get("error"))
    # The launcher's PID (torchrun, for several GPUs) and the trainer's own, from status.json.
    if returncode is None and (pid_alive(row["pid"]) or pid_alive(status.get("pid"))):
        return {}
    log = run.log_tail(3)
    if returncode is not None and returncode < 0:  # a signal: SIGKILL, the OOM killer
        return dict(state="interrupted", ended=now(), error=f"killed by signal {-returncode} after epoch "
                    f"{epochs_done}" + (f"; last log lines: {log}" if log else ""))
    if returncode:
        return dict(state="failed", ended=now(), error=f"exit code {returncode}: {log}")
    if (not status or not fresh) and not status_problem:  # died before training
        return dict(state="failed", ended=now(), error=log or "the job ended before training started")
    note = ("the training process ended without finishing (killed, out of memory or machine restarted) "
            f"after epoch {epochs_done}" + (f"; last log lines: {log}" if log else ""))
    return dict(state="interrupted", ended=now(), error=status.get("error") or note)
