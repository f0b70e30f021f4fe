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
    """A Trainer with the encode options; later stages take a lower peak lr and their own seed.
    ``streams``: (frames, decoded keyframes, structures), one of each per training stream."""
    from dnerv_codec.train import Trainer

    frames, keys, structures = streams
    return Trainer(
        model,
        frames,
        keys,
        structures=structures,
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
    """Run the steps left, under the time budget (less what quantisation-aware fine-tuning will
    take: see :func:`_training_budget`), checked before every step; keep the best epoch's state;
    checkpoint as we go. The progress bar counts steps, with their rate and the time left."""
    start = time.monotonic()
    best_psnr, best_state = -math.inf, None

    def on_term(signum, frame):
        raise _Interrupted()

    previous = signal.signal(signal.SIGTERM, on_term)
    # Under a time budget the bar's total (and so its estimate of the end) waits for the first
    # timed steps, which fit the schedule to the budget: the epochs' count would be wrong.
    total = None if opts.time_budget else trainer.total_steps
    bar = progress.bar(total=total, initial=trainer.step, desc="training", unit="step")
    clock = _Clock(trainer, opts, qat_share, bar)
    trainer.on_step = clock.on_step
    try:
        # clock.over() first: it refits the schedule, which may give back steps
        while not clock.over() and not trainer.finished and trainer.epoch < trainer.epochs:
            stats = trainer.run_epoch(stop=clock.over)
            postfix = {"epoch": trainer.epoch, "loss": f"{stats['loss']:.4f}"}
            bar.set_postfix({**postfix, "psnr": f"{stats['psnr']:.2f}"}, refresh=False)
            if stats["psnr"] > best_psnr:
                best_psnr = stats["psnr"]
                best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            if ckpt is not None and trainer.epoch % opts.checkpoint_every == 0:
                ckpt.save_trainer(trainer.state_dict())
        if clock.spent:
            progress.write(
                f"time budget reached after {trainer.step:,} steps ({trainer.epoch} epochs)"
            )
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
        trainer.on_step = None
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    if ckpt is not None:
        ckpt.save_trainer(trainer.state_dict())
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
    return time.monotonic() - start


class _Clock:
    """Times the steps of a training run against its budget.

    :meth:`on_step` (after every step) advances the progress bar and records the step's
    duration; :meth:`over` (before every step) fits the learning-rate schedule to the time left
    once the durations give a typical step (:func:`_schedule_fit_due`) and says whether the
    budget is spent. Rank 0 decides both for every process of a distributed run.
    """

    WINDOW = 200  # the typical step is the median of at most this many recent steps

    def __init__(self, trainer, opts: EncodeOptions, qat_share: float, bar) -> None:
        self.trainer, self.opts, self.qat_share, self.bar = trainer, opts, qat_share, bar
        self.start = self.last = time.monotonic()
        self.durations: list[float] = []  # of this run's steps (the first carries start-up)
        self.spent = False

    def on_step(self, _stats) -> None:
        now = time.monotonic()
        self.durations.append(now - self.last)
        if len(self.durations) > self.WINDOW + 1:
            del self.durations[1]  # keep the first (start-up) and the most recent ones
        self.last = now
        self.bar.update(1)

    def over(self) -> bool:
        if not self.opts.time_budget:
            return False
        trainer, dist = self.trainer, distributed.current()
        elapsed = time.monotonic() - self.start
        decision = (False, trainer.max_steps)
        if dist.is_main and self.durations:
            typical = _typical_seconds(self.durations)
            budget = _training_budget(self.opts, typical * trainer.steps_per_epoch, self.qat_share)
            if _schedule_fit_due(self.durations, budget - elapsed):
                _fit_schedule_to_budget(trainer, budget - elapsed, typical, self.bar)
            decision = (elapsed >= budget, trainer.max_steps)
        self.spent, trainer.max_steps = dist.broadcast(decision)
        return self.spent


def _typical_seconds(durations: list[float]) -> float:
    """The median duration, the first left out (start-up costs) once there are others: one step
    or epoch slowed by another process does not move it."""
    return statistics.median(durations[1:] or durations)


def _schedule_fit_due(durations: list[float], remaining: float) -> bool:
    """Fit the schedule once three durations after the first give a median (a blip in one of
    them would otherwise bend the schedule), or from the second on when they are so long that
    fewer than ten still fit."""
    samples = durations[1:]
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


def _fit_schedule_to_budget(trainer, remaining: float, step_seconds: float, bar) -> None:
    """Fit the schedule so that warm-up and cosine decay end when the time budget does.

    The official schedule is defined over the epoch count; a budget that stops training midway
    would stop it at a high learning rate. Before every step, once :func:`_schedule_fit_due`,
    the steps that still fit in the ``remaining`` seconds at the typical step duration
    (:func:`_typical_seconds`) set the total (``trainer.max_steps``, which may end the schedule
    inside an epoch): it shrinks when steps are slower than the budget assumed and grows back,
    never past the epochs asked for, when they are faster, so the run ends with the budget, not
    before it. A run whose epochs fit the budget is left alone.
    """
    fits = trainer.step + int(max(0.0, remaining) / max(step_seconds, 1e-9))
    cap = trainer.steps_per_epoch * trainer.epochs
    max_steps = fits if fits < cap else None
    if max_steps != trainer.max_steps or bar.total is None:
        trainer.max_steps = max_steps
        bar.total = min(fits, cap)
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
    the file will hold them (straight-through estimator, the prune mask held), starting no step
    after ``deadline`` (a :func:`time.monotonic` time). Returns the fine-tuning trainer, whose
    ``epoch`` is the number of epochs run."""
    from dnerv_codec.train import FakeQuant

    model = trainer.model
    masks = quant.magnitude_masks(model, prune) if prune > 0 else {}
    quant.apply_masks(model, masks)
    fake_quant = FakeQuant(bits, opts.rate_control.min_per_channel)
    tuner = make_trainer(
        model,
        (trainer.frames, trainer.keyframes, trainer.structures),
        opts,
        trainer.device,
        epochs,
        stage=2,
        warmup=0.0,
        masks=masks,
        fake_quant=fake_quant,
    )

    def past_deadline() -> bool:  # rank 0 decides for every process
        return deadline is not None and distributed.current().main_decides(
            time.monotonic() >= deadline
        )

    for _ in range(epochs):
        if past_deadline():
            break
        tuner.run_epoch(stop=past_deadline)
    return tuner
