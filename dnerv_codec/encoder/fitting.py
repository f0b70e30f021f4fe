"""Fitting the network: training under a time budget, fine-tuning after pruning, and
quantisation-aware fine-tuning (the trainer's ``fake_quant`` option)."""

from __future__ import annotations

import math
import signal
import statistics
import time

from dnerv_codec import distributed, quant
from dnerv_codec.checkpoint import Checkpoint
from dnerv_codec.errors import Interrupted
from dnerv_codec.progress import Progress

from .options import EncodeOptions


class _Interrupted(Exception):
    """Raised from a SIGTERM handler so the encoder saves a checkpoint before it stops."""


_STAGE_LR = (1.0, 0.5, 0.2)  # training, fine-tuning after pruning, quantisation-aware tuning


def make_trainer(model, streams, opts: EncodeOptions, device, epochs: int, stage: int = 0, **kw):
    """A Trainer with the encode options; later stages take a lower peak lr and their own seed."""
    from dnerv_codec.train import Trainer

    frames, keys = streams
    return Trainer(
        model,
        frames,
        keys,
        batch_size=opts.batch_size,
        epochs=epochs,
        lr=opts.lr * _STAGE_LR[stage],
        seed=opts.seed + stage,
        device=device,
        loss_kind=opts.loss,
        weight_rate=opts.weight_rate,
        amp=opts.amp,
        **kw,
    )


def train(
    trainer, opts: EncodeOptions, ckpt: Checkpoint | None, progress: Progress, qat_share=0.0
) -> float:
    """Run the epochs left, under the time budget (less what quantisation-aware fine-tuning will
    take: see :func:`_training_budget`); keep the best state; checkpoint as we go."""
    start = time.monotonic()
    best_psnr, best_state = -math.inf, None

    def on_term(signum, frame):
        raise _Interrupted()

    previous = signal.signal(signal.SIGTERM, on_term)
    bar = progress.bar(total=trainer.epochs, initial=trainer.epoch, desc="training", unit="epoch")
    epoch_seconds: list[float] = []  # of this run (the first carries start-up costs)
    try:
        while trainer.epoch < trainer.epochs:
            stats = trainer.run_epoch()
            bar.update(1)
            elapsed = time.monotonic() - start
            epoch_seconds.append(stats["seconds"])
            typical = _typical_epoch_seconds(epoch_seconds)
            budget = _training_budget(opts, typical, qat_share)
            if budget is not None and _schedule_fit_due(epoch_seconds, budget - elapsed):
                _fit_schedule_to_budget(trainer, budget - elapsed, typical, bar)
            postfix = {"loss": f"{stats['loss']:.4f}", "psnr": f"{stats['psnr']:.2f}"}
            if budget is not None:
                postfix["left"] = f"{max(0.0, budget - elapsed):.0f}s"
            bar.set_postfix(postfix)
            if stats["psnr"] > best_psnr:
                best_psnr = stats["psnr"]
                best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            if ckpt is not None and trainer.epoch % opts.checkpoint_every == 0:
                ckpt.save_trainer(trainer.state_dict())
            if budget is not None and distributed.current().main_decides(elapsed >= budget):
                progress.write(f"time budget reached after {trainer.epoch} epochs")
                break
    except (KeyboardInterrupt, _Interrupted):
        if ckpt is None and opts.checkpoint_dir:  # a rank other than 0 of a distributed run
            raise Interrupted("rank 0 keeps the checkpoints; rerun with --resume") from None
        if ckpt is None:
            raise Interrupted(
                "no checkpoint kept (--checkpoint-dir makes a run resumable)"
            ) from None
        ckpt.save_trainer(trainer.state_dict())
        raise Interrupted(
            f"checkpoint of epoch {trainer.epoch} saved in {ckpt.folder}; "
            "rerun the same command with --resume to continue"
        ) from None
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    if ckpt is not None:
        ckpt.save_trainer(trainer.state_dict())
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
    return time.monotonic() - start


def _typical_epoch_seconds(epoch_seconds: list[float]) -> float:
    """The median epoch duration, the first epoch left out (start-up costs) once there are
    others: one epoch slowed by another process does not move it."""
    return statistics.median(epoch_seconds[1:] or epoch_seconds)


def _schedule_fit_due(epoch_seconds: list[float], remaining: float) -> bool:
    """Fit the schedule once three epochs after the first give a median (a blip in one of them
    would otherwise shrink the schedule for good: it only ever shrinks), or from the second epoch
    on when epochs are so long that fewer than ten still fit."""
    samples = epoch_seconds[1:]
    return len(samples) >= 3 or (bool(samples) and remaining < 10 * samples[-1])


def _training_budget(opts: EncodeOptions, epoch_seconds: float, qat_share: float) -> float | None:
    """Seconds of ``--time-budget`` for training; the rest is kept for quantisation-aware
    fine-tuning after it: ``--qat-epochs N`` epochs, or ``qat_share`` x the epochs trained, each
    at ``opts.rate_control.qat_epoch_cost`` x ``epoch_seconds`` (a training epoch). None: no
    budget."""
    if not opts.time_budget:
        return None
    cost = opts.rate_control.qat_epoch_cost
    if opts.qat_epochs:
        return max(0.0, opts.time_budget - opts.qat_epochs * cost * epoch_seconds)
    return opts.time_budget / (1 + qat_share * cost)


def _fit_schedule_to_budget(trainer, remaining: float, epoch_seconds: float, bar) -> None:
    """Shorten the schedule so that warm-up and cosine decay end within the time budget.

    The official schedule is defined over the epoch count; a budget that stops training midway
    would stop it at a high learning rate. After each epoch, once :func:`_schedule_fit_due`, the
    epochs that still fit in the ``remaining`` seconds at the typical epoch duration
    (:func:`_typical_epoch_seconds`) bound the total. The total only ever shrinks, so the
    learning rates already used stay valid, and a run whose epochs fit the budget is left alone.
    """
    fits = trainer.epoch + int(max(0.0, remaining) / max(epoch_seconds, 1e-9))
    if fits < trainer.epochs:
        trainer.epochs = fits
        bar.total = fits
        bar.refresh()


def prune_and_finetune(model, streams, opts: EncodeOptions, trained: int, device, progress) -> None:
    """Global magnitude pruning, then fine-tuning with the mask held (NeRV's recipe): by default
    for a tenth of the epochs trained."""
    masks = quant.magnitude_masks(model, opts.prune)
    quant.apply_masks(model, masks)
    epochs = opts.finetune_epochs or max(1, trained // 10)
    tuner = make_trainer(model, streams, opts, device, epochs, stage=1, masks=masks)
    for _ in progress.iter(range(epochs), "fine-tuning after pruning"):
        tuner.run_epoch()
    quant.apply_masks(model, masks)


def quantisation_aware_finetune(
    trainer, opts: EncodeOptions, bits: int, prune: float, epochs: int, deadline: float | None
):
    """Fine-tune ``epochs`` epochs with the forward pass on the weights pruned and quantised as
    the file will hold them (straight-through estimator, the prune mask held), starting no epoch
    after ``deadline`` (a :func:`time.monotonic` time). Returns the fine-tuning trainer, whose
    ``epoch`` is the number of epochs run."""
    from dnerv_codec.train import FakeQuant

    model = trainer.model
    masks = quant.magnitude_masks(model, prune) if prune > 0 else {}
    quant.apply_masks(model, masks)
    fake_quant = FakeQuant(bits, opts.rate_control.min_per_channel)
    tuner = make_trainer(
        model,
        (trainer.frames, trainer.keyframes),
        opts,
        trainer.device,
        epochs,
        stage=2,
        warmup=0.0,
        masks=masks,
        fake_quant=fake_quant,
    )
    for _ in range(epochs):
        if deadline is not None and time.monotonic() >= deadline:
            break
        tuner.run_epoch()
    return tuner
