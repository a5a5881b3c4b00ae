"""Training, shaped like torchvision's classification reference: `main(cfg)` runs one job into a run
folder, `train_one_epoch` runs one epoch, `evaluate` scores a split.

The pieces live beside it: config.py (the options), batches.py (the epoch's batches on the device),
loss.py, optim.py (optimizer, schedule, EMA), distill.py (the teacher), distributed.py (torchrun).
The run folder (rundir/folder.py) writes config.json, metrics.jsonl (one line per epoch), best.pt (best
val accuracy), last.pt (resume point), status.json and, at the end, eval.json (val and test, TTA off and on).
"""
from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..data.dataset import check_trainable

from ..data.fer2013 import load_dataset
from ..data.ferplus import with_crowd_labels
from ..data.sources import resolve_data_path
from ..data.leakage import leaked_test_mask
from ..errors import FERError
from ..evaluation.metrics import evaluate_splits, metrics_report, predict_images
from ..labels import EMOTIONS, NUM_CLASSES
from ..models.checkpoints import load_checkpoint, model_from_checkpoint, starting_weights
from ..models.devices import device_name, resolve_device
from ..models.precision import autocast, memory_format, precision_name, use_bf16
from ..models.registry import count_parameters, create_model
from ..paths import StorageError, is_storage_failure, read_text_file, storage_error
from ..rundir.folder import RunFolder, now, provenance
from .batches import BatchSource, auto_batch_size, epoch_seed
from .config import TrainConfig
from .distill import TeacherTargets, teacher_targets
from .distributed import Distributed, init_distributed
from .loss import TrainingLoss
from .optim import LRSchedule, build_ema, build_optimizer, build_schedule

PROGRESS_EVERY_S = 5.0  # how often an epoch's progress reaches status.json


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes the batch, keeps last.pt and exits as 'cancelled'."""

    def __init__(self):
        self.stop = False
        self._previous: dict = {}

    def install(self) -> "StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, lambda *_: setattr(self, "stop", True))
            except ValueError:  # not the main thread (e.g. tests)
                pass
        return self

    def restore(self) -> None:
        """Put back the handlers install() replaced."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def everywhere(self, ddp: Distributed, device) -> bool:
        """True on every rank when any rank was asked to stop."""
        if ddp.world == 1:
            return self.stop
        flag = torch.tensor(float(self.stop), device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


# ----------------------------------------------------------------------------- one epoch

def train_one_epoch(model, batches: BatchSource, criterion: TrainingLoss, optimizer: torch.optim.Optimizer,
                    schedule: LRSchedule, epoch: int, cfg: TrainConfig, stop: StopFlag,
                    ema: torch.optim.swa_utils.AveragedModel | None = None, on_progress=None) -> dict:
    """One epoch; `on_progress(batches_done, batches, seconds)` is called every few seconds (the Train page's bar)."""
    model.train()
    torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout: resume replays the same epoch
    device, ddp = batches.device, batches.ddp
    bf16 = use_bf16(device, cfg.amp)
    total_loss = torch.zeros((), device=device)
    total_correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = last_report = time.perf_counter()
    n_batches = len(batches)
    bar = tqdm(batches.epoch(epoch), total=n_batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
               leave=False, file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 30,
               disable=not ddp.is_main)
    for i, batch in enumerate(bar):
        with autocast(device, bf16):
            logits = model(batch.images)
        loss = criterion(logits, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        schedule.after_batch()
        total_loss += loss.detach() * len(batch.labels)
        total_correct += (logits.argmax(1) == batch.labels).sum()
        seen += len(batch.labels)
        if i % 20 == 0:
            bar.set_postfix(loss=f"{total_loss.item() / seen:.3f}", acc=f"{total_correct.item() / seen:.3f}",
                            img_s=f"{seen / (time.perf_counter() - start):.0f}")
        if on_progress is not None and time.perf_counter() - last_report >= PROGRESS_EVERY_S:
            last_report = time.perf_counter()
            on_progress(i + 1, n_batches, last_report - start)
        if stop.stop and ddp.world == 1:  # under DDP, ranks stop together at the epoch's end
            break
    totals = torch.stack([total_loss.double(), total_correct.double(),
                          torch.tensor(seen, dtype=torch.float64, device=device)])
    if ddp.world > 1:
        dist.all_reduce(totals)
    loss_sum, correct, seen = totals.tolist()
    seconds = time.perf_counter() - start
    return {"train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
            "images_per_s": seen / seconds, "seconds": seconds, "precision": precision_name(bf16),
            "complete": not stop.stop}


@torch.no_grad()
def evaluate(model, split, device, prefix: str = "val", views: int = 1) -> dict:
    """Loss, accuracy and macro-F1 on `split` ({"val_loss": .., ...}), and with `views` > 1 the accuracy
    with that many TTA views ({"test_tta_accuracy": .., "test_tta_views": 2})."""
    probs = predict_images(model, split.images, 1, 512, device)
    loss = F.nll_loss(torch.from_numpy(probs).clamp_min(1e-8).log(), torch.from_numpy(split.labels)).item()
    report = metrics_report(split.labels, probs.argmax(1))
    result = {f"{prefix}_loss": loss, f"{prefix}_accuracy": report["accuracy"],
              f"{prefix}_macro_f1": report["macro_f1"]}
    if views > 1:
        probs = predict_images(model, split.images, views, 512, device)
        result.update({f"{prefix}_tta_accuracy": float((probs.argmax(1) == split.labels).mean()),
                       f"{prefix}_tta_views": views})
    return result


# ----------------------------------------------------------------------------- the job

def load_splits(cfg: TrainConfig) -> dict:
    dataset = load_dataset(cfg.data)
    check_trainable(dataset)
    if cfg.exclude == "audit":  # the data-health audit's own list
        from ..data.audit import audit_dataset
        dataset = dataset.without(audit_dataset(dataset).exclude)
    elif cfg.exclude:
        text = read_text_file(cfg.exclude, "--exclude file")
        dataset = dataset.without(line.strip() for line in text.splitlines() if line.strip())
    if cfg.labels != "fer2013":
        dataset = with_crowd_labels(dataset, cfg.ferplus)
    splits = {n: dataset[n] for n in ("train", "val", "test")}
    if cfg.limit:
        pick = lambda n: np.sort(np.random.default_rng(cfg.seed).permutation(n)[:cfg.limit])  # noqa: E731
        splits = {n: s.subset(pick(len(s))) for n, s in splits.items()}
    return splits


class EpochReporter(Protocol):
    def report(self, epoch: int, val_accuracy: float) -> bool:
        """Tell the study this epoch's PublicTest accuracy; True when the run is to stop, pruned."""


class TrialLink(Protocol):
    """How a run that is an Optuna trial (`--trial`) talks to its study. Whoever starts such a run passes one
    (tuning.trial.STUDY_LINK: `train` on the command line, `tune`), so training does not depend on tuning."""

    def check(self, cfg: TrainConfig) -> None:
        """Before the run folder takes the name: FERError in one line when the trial cannot be used."""

    def reporter(self, cfg: TrainConfig) -> AbstractContextManager[EpochReporter]:
        """What the loop reports each epoch to, entered for the whole training."""


def main(cfg: TrainConfig | None, resume: str | os.PathLike | None = None,
         trial_link: TrialLink | None = None) -> Path:
    """Train into a new run folder (or continue `resume`); returns the run folder.

    Under torchrun every rank trains on its shard of each epoch; rank 0 alone writes the run folder.
    A stop or a crash is recorded in the run's status.json, then re-raised. A run that is a trial of a study
    needs `trial_link`.
    """
    if resume is not None:
        run = RunFolder(resume)
        cfg = _saved_config(run)
    # a resumed run's weights come from its last.pt: the model it started from may since be gone or replaced
    (replace(cfg, init=None) if resume is not None else cfg).validate()
    if cfg.trial and trial_link is None:
        raise FERError(f"this run is trial {cfg.trial} of a study: start it with `python -m fer_core train` or "
                       "`tune`, which connect it to the study")
    if resume is None:
        check_first(cfg, trial_link)
    ddp = init_distributed(cfg.device)
    lock = None
    try:
        if resume is None:
            run = RunFolder.create(cfg.out, cfg.name, cfg.arch) if ddp.is_main else None
            if ddp.world > 1:
                shared = [str(run.path) if run else None]
                dist.broadcast_object_list(shared, src=0)
                run = RunFolder(shared[0])
        if ddp.is_main:  # before anything is written: a second trainer of this run stops here
            lock = run.lock().acquire()
            if resume is None:
                run.write_config(asdict(cfg))
        try:
            train(cfg, run, resume is not None, ddp, trial_link)
        except BaseException as exc:  # a stop or a crash: recorded in status.json, then re-raised
            if is_storage_failure(exc) and not isinstance(exc, StorageError):
                exc = storage_error(exc, "writing in", run.path)
            if ddp.is_main:
                run.record_failure(str(exc) if isinstance(exc, FERError) else f"{type(exc).__name__}: {exc}")
            if isinstance(exc, StorageError):
                raise exc from None  # one line, without torch's writer chain
            raise
    finally:
        if lock is not None:
            lock.release()
        if ddp.world > 1:
            dist.destroy_process_group()
    return run.path


def check_first(cfg: TrainConfig, trial_link: TrialLink | None = None) -> None:
    """What validate() cannot see from the options alone, checked before a run folder takes the name: the Optuna
    trial is there, and the teacher is a model that loads."""
    if cfg.trial:
        trial_link.check(cfg)
    if cfg.teacher:
        from ..models.loading import load_model
        load_model(cfg.teacher, "cpu")  # CheckpointError in one line for a file that is no model


def _saved_config(run: RunFolder) -> TrainConfig:
    """The TrainConfig in a run folder's config.json, or a FERError saying why it cannot be used."""
    if not run.has(RunFolder.CONFIG):
        raise FERError(f"cannot resume {run.path}: no {RunFolder.CONFIG} there (is it a run folder?)")
    saved, problem = run.config()
    if problem or not set(saved) <= {f.name for f in fields(TrainConfig)}:
        raise FERError(f"cannot resume {run.path}: its {RunFolder.CONFIG} is damaged or from another tool")
    return TrainConfig(**saved)


@dataclass
class Progress:
    """What carries over from epoch to epoch, and across a resume (kept in last.pt)."""
    epoch: int = 0
    best_val_accuracy: float = -1.0
    stale_epochs: int = 0
    elapsed: float = 0.0  # training seconds, evaluation excluded

    def update(self, val_accuracy: float, seconds: float) -> bool:
        """Count a finished epoch; True when it improved on the best val accuracy."""
        improved = val_accuracy > self.best_val_accuracy
        self.best_val_accuracy = max(self.best_val_accuracy, val_accuracy)
        self.stale_epochs = 0 if improved else self.stale_epochs + 1
        self.elapsed += seconds
        return improved


def train(cfg: TrainConfig, run: RunFolder, resuming: bool, ddp: Distributed,
          trial_link: TrialLink | None = None) -> None:
    """The training job itself, on every rank."""
    if cfg.trial and ddp.world > 1:
        raise FERError("a tuning trial trains in one process: run `tune` with one GPU per worker instead")
    device = resolve_device(cfg.device)
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device("cuda", ddp.local_rank)
    splits = load_splits(cfg)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, pretrained=cfg.pretrained, crop=cfg.crop)
    if cfg.init and not resuming:
        model.load_state_dict(starting_weights(cfg.init, cfg.arch, cfg.crop))
    model = model.to(device)
    bf16 = use_bf16(device, cfg.amp)
    model = model.to(memory_format=memory_format(device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    batch_size = auto_batch_size(model, device) if cfg.batch_size == "auto" else int(cfg.batch_size)
    batch_size = min(batch_size, len(splits["train"]) // ddp.world)

    train_split = splits["train"]
    batches = BatchSource(train_split.images, train_split.labels, cfg, batch_size, device, ddp)
    criterion = TrainingLoss(cfg, np.bincount(train_split.labels, minlength=NUM_CLASSES), device)
    optimizer = build_optimizer(cfg, model.parameters())
    schedule = build_schedule(cfg, optimizer, len(batches))
    ema = build_ema(model, cfg.ema)

    progress, saved = Progress(), run.resume_point() if resuming else None
    if saved is not None:
        model.load_state_dict(saved["train_state_dict"] if ema else saved["state_dict"])
        if ema:
            ema.load_state_dict(saved["ema"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved.get("scheduler"))
        progress = Progress(saved["epoch"], saved["best_val_accuracy"], saved["stale_epochs"], saved["elapsed"])
    if resuming and ddp.is_main:
        run.truncate_metrics(progress.epoch, (saved or {}).get("metrics_line"))
    step_model = model
    if ddp.world > 1:
        step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        step_model = torch.compile(step_model)

    stop = StopFlag().install()
    try:
        if ddp.is_main:
            where = device_name(device) + (f" x{ddp.world} processes" if ddp.world > 1 else "")
            run.update_status(state="running", pid=os.getpid(), epoch=progress.epoch, epochs=cfg.epochs, device=where,
                              precision=precision_name(bf16),
                              provenance={**provenance(), "dataset": resolve_data_path(cfg.data).name},
                              parameters=count_parameters(model), batch_size=batch_size * ddp.world,
                              train_images=len(train_split), started=now(), error=None)
            print(f"run {run.path}: {cfg.arch} ({count_parameters(model):,} parameters) on {where} in "
                  f"{precision_name(bf16)}, {len(train_split)} training images, batch {batch_size * ddp.world}",
                  file=sys.stderr)
        if cfg.labels == "ferplus-soft":  # the crowd's vote shares, drawn like a clean teacher's probabilities
            batches.teacher = TeacherTargets(torch.from_numpy(train_split.targets).to(device))
        if cfg.teacher:  # after the status: the run shows as running and a stop is heard while the teacher labels
            batches.teacher = teacher_targets(cfg.teacher, train_split.images, device, cfg.teacher_views,
                                              cfg.augment(), seed=epoch_seed(cfg.seed, -1), mirror=cfg.teacher_mirror,
                                              stop=(lambda: stop.stop) if ddp.world == 1 else None)
            if batches.teacher is None or stop.everywhere(ddp, device):  # every rank decides alike
                _cancelled(run, progress.epoch, "while the teacher labelled", ddp)
                return

        meta = {"arch": cfg.arch, "model_config": {"crop": cfg.crop} if cfg.crop else {}, "labels": list(EMOTIONS),
                "train_config": asdict(cfg)}
        # a run that is an Optuna trial reports each epoch to it, and beats its heartbeat while it trains
        with trial_link.reporter(cfg) if cfg.trial else contextlib.nullcontext() as trial:
            epoch = progress.epoch
            for epoch in range(progress.epoch + 1, cfg.epochs + 1):
                report = (lambda done, total, seconds, e=epoch: run.update_status(epoch_batches=[e, done, total, seconds])
                          ) if ddp.is_main else None
                stats = train_one_epoch(step_model, batches, criterion, optimizer, schedule, epoch, cfg, stop, ema=ema,
                                        on_progress=report)
                if not stats.pop("complete"):
                    _cancelled(run, epoch - 1, f"during epoch {epoch}", ddp)
                    return
                eval_model = ema.module if ema else model  # the weights that are evaluated and saved
                stats.update(evaluate(eval_model, splits["val"], device))  # every rank: same decisions, no messages
                if cfg.track_test:  # every rank, like val: a stop at a target accuracy is decided alike everywhere
                    stats.update(evaluate(eval_model, splits["test"], device, "test", cfg.track_test_views))
                schedule.after_epoch(stats["val_accuracy"])
                improved = progress.update(stats["val_accuracy"], stats["seconds"])
                progress.epoch = epoch
                if ddp.is_main:
                    line = {"epoch": epoch, **stats, "lr": optimizer.param_groups[0]["lr"], "time": now()}
                    weights = {**meta, "state_dict": eval_model.state_dict(), "epoch": epoch,
                               "val_accuracy": stats["val_accuracy"]}
                    resume_state = {"train_state_dict": model.state_dict(), "ema": ema.state_dict()} if ema else {}
                    run.record_epoch(line, best=weights if improved else None, last={
                        **weights, **resume_state, "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
                        "best_val_accuracy": progress.best_val_accuracy, "stale_epochs": progress.stale_epochs,
                        "elapsed": progress.elapsed})
                    run.update_status(epoch=epoch, best_val_accuracy=progress.best_val_accuracy)
                    print(f"epoch {epoch}/{cfg.epochs}: loss {stats['train_loss']:.3f} acc {stats['train_accuracy']:.3f} | "
                          f"val loss {stats['val_loss']:.3f} acc {stats['val_accuracy']:.4f} F1 {stats['val_macro_f1']:.3f} | "
                          f"{stats['images_per_s']:.0f} img/s, {stats['seconds']:.0f}s", file=sys.stderr, flush=True)
                if stop.everywhere(ddp, device):
                    _cancelled(run, epoch, f"after epoch {epoch}", ddp)
                    return
                if trial is not None and trial.report(epoch, stats["val_accuracy"]):
                    run.update_status(state="pruned", epoch=epoch)
                    print(f"pruned after epoch {epoch}: the study's pruner stopped this trial", file=sys.stderr)
                    return
                if cfg.stop_at_test_accuracy is not None and stats["test_accuracy"] >= cfg.stop_at_test_accuracy:
                    if ddp.is_main:
                        print(f"PrivateTest accuracy {stats['test_accuracy']:.4f} reached the target "
                              f"{cfg.stop_at_test_accuracy}: stopping", file=sys.stderr)
                    break
                if cfg.patience and progress.stale_epochs >= cfg.patience:
                    if ddp.is_main:
                        print(f"early stopping: no val improvement for {cfg.patience} epochs", file=sys.stderr)
                    break
            if ddp.world > 1:
                dist.barrier()  # best.pt is complete before rank 0 reads it back
            if ddp.is_main:
                run.update_status(phase="evaluating")  # the page says so instead of an ETA of zero
                final_eval(run, splits, cfg.tta_views, device, training_seconds=progress.elapsed)
                run.update_status(state="finished", epoch=epoch, phase=None)
    finally:
        stop.restore()  # an in-process caller (a notebook, pytest) gets its Ctrl-C and SIGTERM back


def _cancelled(run: RunFolder, epochs_done: int, when: str, ddp: Distributed) -> None:
    if ddp.is_main:
        run.update_status(state="cancelled", epoch=epochs_done)
        print(f"cancelled {when}; resume with --resume {run.path}", file=sys.stderr)


def final_eval(run: RunFolder, splits, views: int, device, training_seconds: float) -> dict:
    """eval.json: the best checkpoint on val and test, with TTA off and on."""
    model = model_from_checkpoint(load_checkpoint(run.best), device)
    leaked = leaked_test_mask(splits)  # the run's own train split: what it left out is no leak
    last_report = 0.0

    def report(done: int, total: int) -> None:  # the Train page's bar during this phase
        nonlocal last_report
        if time.perf_counter() - last_report >= PROGRESS_EVERY_S or done == total:
            last_report = time.perf_counter()
            run.update_status(evaluation_views=[done, total])
    result = {"checkpoint": RunFolder.BEST, "tta_views": views, "training_seconds": training_seconds,
              "device": device_name(device), **evaluate_splits(model, splits, views, device, leaked, report)}
    run.write_evaluation(result)
    print(f"best checkpoint: val {result['val']['plain']['accuracy']:.4f} (TTA {result['val']['tta']['accuracy']:.4f}), "
          f"test {result['test']['plain']['accuracy']:.4f} (TTA {result['test']['tta']['accuracy']:.4f})", file=sys.stderr)
    return result
