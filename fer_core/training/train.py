"""Training: `main(config)` runs one job into a run folder (train_config.py holds the config and its command
line, distributed.py the torchrun plumbing, run_folder.py the files).

The whole training split lives on the training device as uint8; each batch is indexed,
normalised and augmented there (augment.py), so no host copy happens per batch. A run folder holds
config.json, metrics.jsonl (one line per epoch), best.pt (best val accuracy), last.pt (resume
point), status.json and, at the end, eval.json (val and test, TTA off and on).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..data.fer2013 import check_trainable, load_dataset, resolve_data_path
from ..data.leakage import leaked_test_mask
from ..errors import FERError
from ..evaluation.metrics import evaluate_splits, metrics_report, predict_images
from ..labels import EMOTIONS, NUM_CLASSES
from ..models.checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint
from ..models.devices import device_name, resolve_device
from ..models.precision import autocast, memory_format, precision_name, use_bf16
from ..models.registry import count_parameters, create_model, normalize_images
from ..paths import StorageError, is_storage_failure, read_text_file, storage_error
from ..runs.folder import RunFolder, now, provenance
from .augment import augment_batch
from .balance import class_weights, epoch_indices, weighted_cross_entropy
from .config import DEFAULT_LR, TrainConfig
from .distill import TeacherTargets, distillation_loss, teacher_targets
from .distributed import Distributed, init_distributed, shard
from .mixing import alternating_flips, mix_batch

# ----------------------------------------------------------------------------- building blocks

def build_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    lr = cfg.lr or DEFAULT_LR[cfg.optimizer]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "nadam":
        return torch.optim.NAdam(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer, steps_per_epoch: int):
    """(scheduler, steps per batch?): one-cycle and cosine step per batch, plateau per epoch on val."""
    total = cfg.epochs * steps_per_epoch
    if cfg.scheduler == "onecycle":
        if total < 4:  # too few steps for a warm-up and a decay phase: keep the peak rate
            return None, False
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"],
                                                   total_steps=total, pct_start=max(0.25, 1.5 / total)), True
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3), False
    return None, False


def build_ema(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """A moving average of the weights and BatchNorm statistics, updated after every step (None when off).

    The decay warms up as (1 + n) / (10 + n) after n updates, capped at `decay` (TensorFlow's
    ExponentialMovingAverage): a fixed 0.998 kept two thirds of the random initialisation after one epoch
    and cost 10 points of PublicTest at a 6-epoch budget (measured)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        if not averaged[0].is_floating_point():  # tensors come grouped by dtype: e.g. BatchNorm's num_batches_tracked
            torch._foreach_copy_(averaged, current)
            return
        torch._foreach_lerp_(averaged, current, 1 - min(decay, (1 + n) / (10 + n)))
    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def auto_batch_size(model: torch.nn.Module, device: torch.device, cap: int = 4096) -> int:
    """Largest power-of-two batch (to `cap`) whose training step fits in GPU memory; 128 on CPU."""
    if device.type != "cuda":
        return 128
    best, size = 64, 64
    params = [p.detach().clone() for p in model.parameters()]
    while size <= cap:
        try:
            x = torch.randn(size, 1, 48, 48, device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                model(x).float().logsumexp(1).mean().backward()
            best, size = size, size * 2
        except torch.OutOfMemoryError:
            break
        finally:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
    with torch.no_grad():  # the probe only ran backward (no optimizer step), but be certain
        for p, saved in zip(model.parameters(), params):
            p.copy_(saved)
    return best // 2 if best >= 256 else best  # headroom for the optimizer state and fragmentation


class _StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes the batch, keeps last.pt and exits as 'cancelled'."""

    def __init__(self):
        self.stop = False

    def install(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, lambda *_: setattr(self, "stop", True))
            except ValueError:  # not the main thread (e.g. tests)
                pass


# ----------------------------------------------------------------------------- one epoch

def epoch_order(labels: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """The epoch's shuffled training indices after balancing, cut to --epoch-size when one is set."""
    order = epoch_indices(labels, cfg.balance, generator)
    return order[:cfg.epoch_size] if cfg.epoch_size else order


PROGRESS_EVERY_S = 5.0  # how often an epoch's progress reaches status.json


def train_one_epoch(model, optimizer, scheduler, step_per_batch, images, labels, cfg: TrainConfig, epoch: int,
                    loss_weights, device, stop: _StopFlag, batch_size: int, ddp: Distributed | None = None,
                    ema: torch.optim.swa_utils.AveragedModel | None = None,
                    teacher: TeacherTargets | None = None, on_progress=None) -> dict:
    """One epoch; `on_progress(batches_done, batches, seconds)` is called every few seconds (the Train page's bar)."""
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed * 100_003 + epoch)
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: resume replays the same epoch
    ddp = ddp or Distributed()
    order = shard(epoch_order(labels, cfg, gen), ddp)
    n_batches = len(order) // batch_size + (1 if len(order) % batch_size >= 2 else 0)
    aug = cfg.augment()
    flips = alternating_flips(len(images), epoch, cfg.seed).to(device) if cfg.alternating_flip else None
    bf16 = use_bf16(device, cfg.amp)
    layout = memory_format(device, bf16)
    total_loss = torch.zeros((), device=device)
    total_correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = last_report = time.perf_counter()
    bar = tqdm(range(n_batches), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", leave=False,
               file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 30, disable=not ddp.is_main)
    for i in bar:
        idx = order[i * batch_size:(i + 1) * batch_size]
        if teacher is not None and teacher.views is not None:  # consistent teaching: the views the teacher labelled
            x, targets = teacher.draw(idx, gen)
        else:
            x = augment_batch(normalize_images(images[idx]), aug, aug_gen, None if flips is None else flips[idx])
            targets = None if teacher is None else teacher.probs[idx]
        x, partner, lam = mix_batch(x, cfg.mix, cfg.mix_alpha, gen)
        x = x.contiguous(memory_format=layout)
        y = labels[idx]
        with autocast(device, bf16):
            logits = model(x)
        loss = weighted_cross_entropy(logits.float(), y, loss_weights, cfg.label_smoothing)
        if lam < 1:  # the partner's target in the share of its pixels
            loss = lam * loss + (1 - lam) * weighted_cross_entropy(logits.float(), y[partner], loss_weights,
                                                                   cfg.label_smoothing)
        if targets is not None:
            targets = lam * targets + (1 - lam) * targets[partner] if lam < 1 else targets
            loss = distillation_loss(logits.float(), targets, loss, cfg.distill_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        if scheduler is not None and step_per_batch:
            scheduler.step()
        total_loss += loss.detach() * len(y)
        total_correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if i % 20 == 0:
            bar.set_postfix(loss=f"{total_loss.item() / seen:.3f}", acc=f"{total_correct.item() / seen:.3f}",
                            img_s=f"{seen / (time.perf_counter() - start):.0f}")
        if on_progress is not None and time.perf_counter() - last_report >= PROGRESS_EVERY_S:
            last_report = time.perf_counter()
            on_progress(i + 1, n_batches, last_report - start)
        if stop.stop and ddp.world == 1:  # under DDP, ranks stop together at the epoch's end
            break
    totals = torch.stack([total_loss.double(), total_correct.double(), torch.tensor(seen, dtype=torch.float64,
                                                                                     device=device)])
    if ddp.world > 1:
        dist.all_reduce(totals)
    loss_sum, correct, seen = totals.tolist()
    seconds = time.perf_counter() - start
    return {"train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
            "images_per_s": seen / seconds, "seconds": seconds, "precision": precision_name(bf16),
            "complete": not stop.stop}


@torch.no_grad()
def validate(model, split, device, prefix: str = "val") -> dict:
    probs = predict_images(model, split.images, 1, 512, device)
    y = torch.from_numpy(split.labels)
    loss = F.nll_loss(torch.from_numpy(probs).clamp_min(1e-8).log(), y).item()
    report = metrics_report(split.labels, probs.argmax(1))
    return {f"{prefix}_loss": loss, f"{prefix}_accuracy": report["accuracy"], f"{prefix}_macro_f1": report["macro_f1"]}


def tta_accuracy(model, split, device, views: int, prefix: str = "test") -> dict:
    """Accuracy with `views` TTA views, e.g. {"test_tta_accuracy": .., "test_tta_views": 2}."""
    probs = predict_images(model, split.images, views, 512, device)
    return {f"{prefix}_tta_accuracy": float((probs.argmax(1) == split.labels).mean()), f"{prefix}_tta_views": views}


# ----------------------------------------------------------------------------- the job

def _stop_requested(stop: _StopFlag, ddp: Distributed, device) -> bool:
    """True on every rank when any rank was asked to stop."""
    if ddp.world == 1:
        return stop.stop
    flag = torch.tensor(float(stop.stop), device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _cancelled(run: RunFolder, epochs_done: int, when: str, ddp: Distributed) -> None:
    if ddp.is_main:
        run.update_status(state="cancelled", epoch=epochs_done)
        print(f"cancelled {when}; resume with --resume {run.path}", file=sys.stderr)


def load_splits(cfg: TrainConfig) -> dict:
    dataset = load_dataset(cfg.data)
    check_trainable(dataset)
    if cfg.exclude == "audit":  # the data-health audit's own list
        from ..data.audit import audit_dataset
        dataset = dataset.without(audit_dataset(dataset).exclude)
    elif cfg.exclude:
        text = read_text_file(cfg.exclude, "--exclude file")
        dataset = dataset.without(line.strip() for line in text.splitlines() if line.strip())
    splits = {n: dataset[n] for n in ("train", "val", "test")}
    if cfg.limit:
        pick = lambda n: np.sort(np.random.default_rng(cfg.seed).permutation(n)[:cfg.limit])  # noqa: E731
        splits = {n: s.subset(pick(len(s))) for n, s in splits.items()}
    return splits


def main(cfg: TrainConfig | None, resume: str | os.PathLike | None = None) -> Path:
    """Train into a new run folder (or continue `resume`); returns the run folder.

    Under torchrun every rank trains on its shard of each epoch; rank 0 alone writes the run folder.
    """
    if resume is not None:
        run = RunFolder(resume)
        cfg = _saved_config(run)
    cfg.validate()
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
            _train(cfg, run, resume is not None, ddp)
        except BaseException as exc:  # a stop or a crash is recorded in status.json, then re-raised
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


def _saved_config(run: RunFolder) -> TrainConfig:
    """The TrainConfig in a run folder's config.json, or a FERError saying why it cannot be used."""
    if not run.has(RunFolder.CONFIG):
        raise FERError(f"cannot resume {run.path}: no {RunFolder.CONFIG} there (is it a run folder?)")
    saved, problem = run.config()
    if problem or not set(saved) <= {f.name for f in fields(TrainConfig)}:
        raise FERError(f"cannot resume {run.path}: its {RunFolder.CONFIG} is damaged or from another tool")
    return TrainConfig(**saved)


def _train(cfg: TrainConfig, run: RunFolder, resuming: bool, ddp: Distributed) -> None:
    device = resolve_device(cfg.device)
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device("cuda", ddp.local_rank)
    splits = load_splits(cfg)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, pretrained=cfg.pretrained, crop=cfg.crop).to(device)
    bf16 = use_bf16(device, cfg.amp)
    model = model.to(memory_format=memory_format(device, bf16))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    batch_size = auto_batch_size(model, device) if cfg.batch_size == "auto" else int(cfg.batch_size)
    batch_size = min(batch_size, len(splits["train"]) // ddp.world)

    images = torch.from_numpy(splits["train"].images).unsqueeze(1).to(device)
    labels = torch.from_numpy(splits["train"].labels).to(device)
    counts = np.bincount(splits["train"].labels, minlength=NUM_CLASSES)
    loss_weights = (torch.tensor(class_weights(counts, "weighted"), dtype=torch.float32, device=device)
                    if cfg.balance == "weighted" else None)
    epoch_len = len(shard(epoch_order(labels, cfg, torch.Generator().manual_seed(0)), ddp))
    steps_per_epoch = epoch_len // batch_size + (1 if epoch_len % batch_size >= 2 else 0)
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler, step_per_batch = build_scheduler(cfg, optimizer, steps_per_epoch)
    ema = build_ema(model, cfg.ema)

    start_epoch, best_acc, stale_epochs, elapsed, last = 1, -1.0, 0, 0.0, {}
    if resuming and run.last.exists():
        last = load_checkpoint(run.last)
        model.load_state_dict(last["train_state_dict"] if ema else last["state_dict"])
        if ema:
            ema.load_state_dict(last["ema"])
        optimizer.load_state_dict(last["optimizer"])
        if scheduler is not None and last.get("scheduler"):
            scheduler.load_state_dict(last["scheduler"])
        start_epoch = last["epoch"] + 1
        best_acc, stale_epochs, elapsed = last["best_val_accuracy"], last["stale_epochs"], last["elapsed"]
    if resuming and ddp.is_main:
        run.truncate_metrics(start_epoch - 1, last.get("metrics_line"))
    step_model = model
    if ddp.world > 1:
        step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        step_model = torch.compile(step_model)

    meta = {"arch": cfg.arch, "model_config": {"crop": cfg.crop} if cfg.crop else {}, "labels": list(EMOTIONS),
            "train_config": asdict(cfg)}
    stop = _StopFlag()
    stop.install()
    if ddp.is_main:
        run.update_status(state="running", pid=os.getpid(), epoch=start_epoch - 1, epochs=cfg.epochs,
                     device=device_name(device) + (f" x{ddp.world} processes" if ddp.world > 1 else ""),
                     precision=precision_name(bf16), provenance={**provenance(), "dataset": resolve_data_path(cfg.data).name},
                     parameters=count_parameters(model), batch_size=batch_size * ddp.world,
                     train_images=len(splits["train"]), started=now(), error=None)
        print(f"run {run.path}: {cfg.arch} ({count_parameters(model):,} parameters) on {device_name(device)}"
              f"{f' x{ddp.world}' if ddp.world > 1 else ''} in {precision_name(bf16)}, {len(splits['train'])} training images, "
              f"batch {batch_size * ddp.world}", file=sys.stderr)
    teacher = None
    if cfg.teacher:  # after the status: the run shows as running and a stop is heard while the teacher labels
        teacher = teacher_targets(cfg.teacher, splits["train"].images, device, cfg.teacher_views, cfg.augment(),
                                  seed=cfg.seed * 100_003 - 1, mirror=cfg.teacher_mirror,
                                  stop=(lambda: stop.stop) if ddp.world == 1 else None)
        if teacher is None or _stop_requested(stop, ddp, device):  # every rank decides alike
            _cancelled(run, start_epoch - 1, "while the teacher labelled", ddp)
            return

    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs + 1):
        report = (lambda done, total, seconds, e=epoch: run.update_status(epoch_batches=[e, done, total, seconds])
                  ) if ddp.is_main else None
        stats = train_one_epoch(step_model, optimizer, scheduler, step_per_batch, images, labels, cfg, epoch,
                                loss_weights, device, stop, batch_size, ddp, ema=ema, teacher=teacher,
                                on_progress=report)
        if not stats.pop("complete"):
            _cancelled(run, epoch - 1, f"during epoch {epoch}", ddp)
            return
        eval_model = ema.module if ema else model  # the weights that are evaluated and saved
        stats.update(validate(eval_model, splits["val"], device))  # every rank: same decisions, no messages
        if cfg.track_test:  # every rank, like val: a stop at a target accuracy is decided alike everywhere
            stats.update(validate(eval_model, splits["test"], device, prefix="test"))
            if cfg.track_test_views > 1:
                stats.update(tta_accuracy(eval_model, splits["test"], device, cfg.track_test_views))
        if scheduler is not None and not step_per_batch:
            scheduler.step(stats["val_accuracy"])
        elapsed += stats["seconds"]
        improved = stats["val_accuracy"] > best_acc
        best_acc = max(best_acc, stats["val_accuracy"])
        stale_epochs = 0 if improved else stale_epochs + 1
        if ddp.is_main:
            line = {"epoch": epoch, **stats, "lr": optimizer.param_groups[0]["lr"], "time": now()}
            if improved:
                save_checkpoint(run.best, {**meta, "state_dict": eval_model.state_dict(), "epoch": epoch,
                                                      "val_accuracy": stats["val_accuracy"]})
            resume_state = {"train_state_dict": model.state_dict(), "ema": ema.state_dict()} if ema else {}
            save_checkpoint(run.last, {
                **meta, "state_dict": eval_model.state_dict(), **resume_state, "epoch": epoch,
                "val_accuracy": stats["val_accuracy"],
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else {},
                "best_val_accuracy": best_acc, "stale_epochs": stale_epochs, "elapsed": elapsed,
                "metrics_line": line})
            # after last.pt: a resume never counts an epoch twice, and re-appends this line if a stop lost it
            run.append_metrics(line)
            run.update_status(epoch=epoch, best_val_accuracy=best_acc)
            print(f"epoch {epoch}/{cfg.epochs}: loss {stats['train_loss']:.3f} acc {stats['train_accuracy']:.3f} | "
                  f"val loss {stats['val_loss']:.3f} acc {stats['val_accuracy']:.4f} F1 {stats['val_macro_f1']:.3f} | "
                  f"{stats['images_per_s']:.0f} img/s, {stats['seconds']:.0f}s", file=sys.stderr, flush=True)
        if _stop_requested(stop, ddp, device):
            _cancelled(run, epoch, f"after epoch {epoch}", ddp)
            return
        if cfg.stop_at_test_accuracy is not None and stats["test_accuracy"] >= cfg.stop_at_test_accuracy:
            if ddp.is_main:
                print(f"PrivateTest accuracy {stats['test_accuracy']:.4f} reached the target "
                      f"{cfg.stop_at_test_accuracy}: stopping", file=sys.stderr)
            break
        if cfg.patience and stale_epochs >= cfg.patience:
            if ddp.is_main:
                print(f"early stopping: no val improvement for {cfg.patience} epochs", file=sys.stderr)
            break

    if ddp.world > 1:
        dist.barrier()  # best.pt is complete before rank 0 reads it back
    if ddp.is_main:
        run.update_status(phase="evaluating")  # the page says so instead of an ETA of zero
        final_eval(run, splits, cfg.tta_views, device, training_seconds=elapsed)
        run.update_status(state="finished", epoch=epoch, phase=None)


def final_eval(run: RunFolder, splits, views: int, device, training_seconds: float) -> dict:
    """eval.json: the best checkpoint on val and test, with TTA off and on."""
    model = model_from_checkpoint(load_checkpoint(run.best), device)
    leaked = leaked_test_mask(splits)  # the run's own train split: what it left out is no leak
    result = {"checkpoint": RunFolder.BEST, "tta_views": views, "training_seconds": training_seconds,
              "device": device_name(device), **evaluate_splits(model, splits, views, device, leaked)}
    run.write_evaluation(result)
    print(f"best checkpoint: val {result['val']['plain']['accuracy']:.4f} (TTA {result['val']['tta']['accuracy']:.4f}), "
          f"test {result['test']['plain']['accuracy']:.4f} (TTA {result['test']['tta']['accuracy']:.4f})", file=sys.stderr)
    return result


