"""Fitting a D-NeRV network to a set of videos (He et al., CVPR 2023, https://arxiv.org/abs/2303.14124).

Training is overfitting: the network learns the videos it will encode. This module holds the
official learning-rate schedule and a small, file-free trainer (the loss is in
:mod:`dnerv_codec.losses`); the encoder adds progress bars, checkpoints and time budgets around
it. The decoder never imports this module.

Round trip::

    model = build_model("tiny")                       # seed torch before this for reproducible init
    frames = [torch.randint(0, 256, (9, 32, 48, 3), dtype=torch.uint8)]
    keys = [frames[0][[0, 8]].permute(0, 3, 1, 2)]    # decoded keyframes 0 and 8 (here: lossless)
    trainer = Trainer(model, frames, keys, batch_size=1, epochs=2, seed=0)
    stats = trainer.run_epoch()                       # {"loss": ..., "psnr": ..., ...}
    assert trainer.epoch == 1

Differences from the official ``train.py``: the last partial batch of an epoch is kept (the official
loader drops it, so every epoch left a clip out), and the shuffling uses a generator held in the
trainer's state, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from . import quant
from .clips import Structure, clip_inputs
from .errors import InputError
from .losses import LOSS_KINDS, dnerv_loss, frame_psnr, weight_rate_bits
from .model import DNeRV


def lr_at(step: int, total_steps: int, base_lr: float = 5e-4, warmup: float = 0.2) -> float:
    """Official per-iteration schedule: linear warm-up from 0.1 * lr over the first ``warmup``
    fraction of the steps, then cosine decay to 0."""
    w = warmup * total_steps
    if step < w:
        return base_lr * (0.1 + 0.9 * step / w)
    return base_lr * 0.5 * (1 + math.cos(math.pi * (step - w) / max(total_steps - w, 1e-12)))


def _chw_uint8(x: Tensor | np.ndarray) -> Tensor:
    if getattr(x, "lazy", False):  # read on demand (dnerv_codec.framecache.PatchStream)
        return x  # type: ignore[return-value]
    x = torch.as_tensor(x)
    if x.ndim != 4 or 3 not in (x.shape[1], x.shape[-1]):
        raise InputError(f"frames must be (N, H, W, 3) or (N, 3, H, W), got {tuple(x.shape)}")
    return (x if x.shape[1] == 3 else x.permute(0, 3, 1, 2)).contiguous()


def _as_float01(x: Tensor | np.ndarray) -> Tensor:
    x = _chw_uint8(x)
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


class ClipRow(NamedTuple):
    """One clip of the training set, with everything a batch needs from it."""

    video: int
    frames: np.ndarray  # frame indices into the video, clamped past its end
    mask: np.ndarray  # bool, False for padded frames
    t: np.ndarray  # position between the two keyframes, in [0, 1]
    pos: np.ndarray  # position in the video, for the time encoding
    key_start: int  # keyframe indices into the video's keyframes
    key_end: int


class FakeQuant(NamedTuple):
    """Quantisation-aware training: the forward pass runs on the weights quantised as the file
    stores them (:func:`dnerv_codec.quant.fake_quantize`), the gradient updates the float
    weights (straight-through estimator)."""

    bits: int
    min_per_channel: int = 0


class Trainer:
    """Fits a :class:`DNeRV` to videos: AdamW (0.9, 0.999), weight decay 0, official schedule.

    Args:
        model: the network (its frame size = the frames' padded size).
        frames: per video, uint8 ``(N_v, H, W, 3)`` or ``(N_v, 3, H, W)``.
        keyframes: per video, the *decoded* keyframes ``(K_v, 3, H, W)`` (uint8, or float in [0, 1])
            at the keyframe positions of its structure.
        structures: per video, where its keyframes are (:class:`dnerv_codec.clips.Structure`);
            default: every T frames and the last (:func:`dnerv_codec.clips.keyframe_frames`).
        batch_size: clips per step; epochs: total epochs (sets the schedule); lr: base rate.
        seed: seeds the clip shuffling (the model's init is the caller's: seed before building it).
        device: where to train; amp: autocast (bf16 where supported, else fp16). Off by default:
            on an H200 it slowed the rate-controlled encoder's steps by 10-25 % and sped up only
            an 8 M-parameter network at 8 clips per step (benchmarks/RESULTS.md, "GPU").
        weight_rate: entropy-aware training: adds ``weight_rate`` x the estimated bits of the
            weights per pixel of the set (:func:`weight_rate_bits`) to the loss; 0 = official.
        loss_kind: "uvg" or "ucf"; on_step: called after every step with a dict of step stats.
        masks: pruning masks (:func:`dnerv_codec.quant.magnitude_masks`) held after every step.
        fake_quant: train with the weights quantised in the forward pass (:class:`FakeQuant`).
        distributed: train with DistributedDataParallel over the initialised process group
            (default: when one with several ranks is initialised). ``batch_size`` stays the
            global batch; each rank takes ``batch_size / world`` clips of every step.
    """

    def __init__(
        self,
        model: DNeRV,
        frames: Sequence[Tensor | np.ndarray],
        keyframes: Sequence[Tensor | np.ndarray],
        *,
        batch_size: int = 1,
        epochs: int = 1,
        lr: float = 5e-4,
        seed: int = 0,
        device: str | torch.device = "cpu",
        loss_kind: str = "uvg",
        warmup: float = 0.2,
        amp: bool = False,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        distributed: bool | None = None,
        weight_rate: float = 0.0,
        masks: dict[str, Tensor] | None = None,
        fake_quant: FakeQuant | None = None,
        structures: Sequence[Structure] | None = None,
    ):
        if len(frames) != len(keyframes) or not frames:
            raise InputError("need one keyframe tensor per video and at least one video")
        if loss_kind not in LOSS_KINDS or batch_size < 1 or epochs < 1 or not weight_rate >= 0:
            raise InputError(
                f"bad trainer options: {loss_kind=}, {batch_size=}, {epochs=}, {weight_rate=}"
            )
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.T = model.T
        self.frames = [_chw_uint8(f) for f in frames]
        # keyframes stay as given (uint8: a quarter of the memory) and are normalised per batch
        self.keyframes = [_chw_uint8(k) for k in keyframes]
        self.structures = (
            list(structures)
            if structures is not None
            else [Structure.uniform(len(f), self.T) for f in self.frames]
        )
        self._index_clips()
        self.batch_size, self.epochs, self.lr, self.seed = batch_size, epochs, lr, seed
        self.loss_kind, self.warmup, self.on_step = loss_kind, warmup, on_step
        self.weight_rate = float(weight_rate)
        self.masks, self.fake_quant = masks or {}, fake_quant
        H, W = model.frame_size
        self._pixels = sum(len(f) for f in self.frames) * H * W
        self.amp = bool(amp)
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
        )
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.step = 0
        self.max_steps: int | None = None  # a shorter schedule, in steps (time budgets)
        self._setup_ranks(distributed)

    def _setup_ranks(self, distributed: bool | None) -> None:
        from torch import distributed as tdist

        if distributed is None:
            distributed = tdist.is_available() and tdist.is_initialized()
        self.rank, self.world = (
            (tdist.get_rank(), tdist.get_world_size()) if distributed else (0, 1)
        )
        if self.batch_size % self.world:
            raise InputError(
                f"--batch-size {self.batch_size} (the global batch) must be a multiple of the "
                f"number of processes, {self.world}"
            )
        self.net = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)

    def _index_clips(self) -> None:
        """Precompute every clip's frame indices, mask, t, pos and keyframe indices."""
        H, W = self.model.frame_size
        rows = []
        for v, (f, k) in enumerate(zip(self.frames, self.keyframes, strict=True)):
            if tuple(f.shape[-2:]) != (H, W) or tuple(k.shape[-2:]) != (H, W):
                raise InputError(f"video {v}: frames and keyframes must be padded to {H}x{W}")
            structure = self.structures[v]
            if (structure.num_frames, structure.clip_length) != (len(f), self.T):
                raise InputError(f"video {v}: its structure is for another length or clip length")
            clips = structure.clips()
            if k.shape[0] != clips[-1].key_end_index + 1:
                raise InputError(f"video {v}: expected {clips[-1].key_end_index + 1} keyframes")
            for c in clips:
                idx, mask, t, pos = clip_inputs(c, len(f), self.T)
                rows.append(ClipRow(v, idx, mask, t, pos, c.key_start_index, c.key_end_index))
        self.clips = rows

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.clips) / self.batch_size)  # the last partial batch is kept

    @property
    def total_steps(self) -> int:
        """Steps of the whole schedule: the epochs', or ``max_steps`` where a time budget set
        fewer (the learning-rate schedule ends there)."""
        steps = self.steps_per_epoch * self.epochs
        return steps if self.max_steps is None else min(steps, self.max_steps)

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps

    def _batch(self, ids: list[int]) -> tuple[Tensor, ...]:
        rows = [self.clips[i] for i in ids]
        target = torch.stack([self.frames[r.video][torch.from_numpy(r.frames)] for r in rows])
        key = torch.stack([self.keyframes[r.video][[r.key_start, r.key_end]] for r in rows])
        mask, t, pos = (
            torch.from_numpy(np.stack([getattr(r, name) for r in rows]))
            for name in ("mask", "t", "pos")
        )
        dev = self.device
        key = self.model.normalize(_as_float01(key.flatten(0, 1)).to(dev)).unflatten(0, (-1, 2))
        target = target.to(dev).float() / 255  # (B, T, 3, H, W)
        return key, t.to(dev), pos.to(dev), target, mask.to(dev)

    def _autocast(self):
        if not self.amp:
            return nullcontext()
        dt = torch.bfloat16
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            dt = torch.float16
        return torch.autocast(self.device.type, dtype=dt)

    def run_epoch(self, stop: Callable[[], bool] | None = None) -> dict[str, float]:
        """Train one epoch over all clips in a seeded random order; returns mean loss and PSNR.

        The epoch ends early when the schedule does (``max_steps``) or when ``stop()``, asked
        before every step, says so (a time budget); its statistics are those of the steps run.
        """
        if self.epoch >= self.epochs or self.finished:
            raise InputError(f"training already finished ({self.epochs} epochs)")
        self.net.train()
        order = torch.randperm(len(self.clips), generator=self.gen).tolist()
        losses, psnrs, t0 = [], [], time.perf_counter()
        for b in range(self.steps_per_epoch):
            if b and ((stop is not None and stop()) or self.finished):  # stop() may refit
                break
            ids, weight = self._share(order[b * self.batch_size :][: self.batch_size])
            key, t, pos, target, mask = self._batch(ids)
            lr = lr_at(self.step, self.total_steps, self.lr, self.warmup)
            for g in self.opt.param_groups:
                g["lr"] = lr
            floats = self._swap_in_quantised()
            with self._autocast():
                pred = self.net(key, t, pos)  # (B, T, 3, H, W)
            loss = dnerv_loss(pred, target, mask, self.loss_kind)
            objective = loss * weight if self.world > 1 else loss  # DDP averages over ranks
            if self.weight_rate:  # the same term on every rank: the average keeps it once
                objective = (
                    objective + self.weight_rate * weight_rate_bits(self.model) / self._pixels
                )
            self.opt.zero_grad(set_to_none=True)
            objective.backward()
            self._restore(floats)  # the quantised forward pass's gradient updates the floats
            self.opt.step()
            quant.apply_masks(self.model, self.masks)
            self.step += 1
            losses.append(loss.item() * weight / self.world)  # this rank's part of the step loss
            if weight:
                psnrs.append(frame_psnr(pred.detach(), target)[mask])
            if self.on_step is not None:
                self.on_step({"epoch": self.epoch, "step": self.step, "loss": losses[-1], "lr": lr})
        self.epoch += 1
        loss, psnr = self._epoch_means(losses, psnrs)
        return {
            "epoch": self.epoch,
            "loss": loss,
            "psnr": psnr,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }

    def _float_params(self) -> list[Tensor]:
        return [p for p in self.model.parameters() if p.is_floating_point()]

    @torch.no_grad()
    def _swap_in_quantised(self) -> list[Tensor]:
        """Under ``fake_quant``, replace the weights by their quantised values; returns the
        float weights to restore (empty otherwise)."""
        if self.fake_quant is None:
            return []
        bits, min_per_channel = self.fake_quant
        floats = []
        for p in self._float_params():
            floats.append(p.detach().clone())
            p.copy_(quant.fake_quantize(p, bits, min_per_channel))
        return floats

    @torch.no_grad()
    def _restore(self, floats: list[Tensor]) -> None:
        for p, f in zip(self._float_params() if floats else [], floats, strict=True):
            p.copy_(f)

    @torch.no_grad()
    def evaluate(self, max_clips: int | None = None) -> float:
        """Mean PSNR of the network (its current weights) over every real frame of the set, or
        of ``max_clips`` clips spread evenly over it (a bounded cost for large sets)."""
        was_training = self.model.training
        self.model.eval()
        ids = list(range(len(self.clips)))
        if max_clips is not None and len(ids) > max_clips:
            ids = [int(i) for i in np.linspace(0, len(ids) - 1, max_clips).round()]
        values = []
        for start in range(0, len(ids), self.batch_size):
            key, t, pos, target, mask = self._batch(ids[start : start + self.batch_size])
            values.append(frame_psnr(self.model(key, t, pos), target)[mask])
        self.model.train(was_training)
        return torch.cat(values).mean().item()

    def _share(self, ids: list[int]) -> tuple[list[int], float]:
        """This rank's clips of a global batch, and the weight that makes the all-reduced
        gradient the one of the whole batch's loss (a mean over its real frames)."""
        if self.world == 1:
            return ids, 1.0
        per = self.batch_size // self.world
        mine = ids[self.rank * per :][:per]
        if not mine:  # a short last batch: run one clip with weight 0 to join the all-reduce
            return ids[:1], 0.0

        def frames(rows: list[int]) -> int:
            return sum(int(self.clips[i].mask.sum()) for i in rows)

        return mine, self.world * frames(mine) / frames(ids)

    def _epoch_means(self, losses: list[float], psnrs: list[Tensor]) -> tuple[float, float]:
        """Mean step loss and mean frame PSNR of the epoch, over all ranks."""
        if self.world == 1:
            return float(np.mean(losses)), torch.cat(psnrs).mean().item()
        from torch import distributed as tdist

        p = torch.cat(psnrs).double() if psnrs else torch.zeros(0, dtype=torch.float64)
        sums = torch.tensor([sum(losses), p.sum().item(), p.numel()], dtype=torch.float64)
        sums = sums.to(self.device)
        tdist.all_reduce(sums)
        return sums[0].item() / len(losses), (sums[1] / sums[2]).item()

    def fit(self) -> list[dict[str, float]]:
        """Run the remaining epochs."""
        return [self.run_epoch() for _ in range(self.epoch, self.epochs)]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: model, optimiser, counters and the shuffling RNG."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "rng": self.gen.get_state(),
            "options": {
                "batch_size": self.batch_size,
                "epochs": self.epochs,
                "lr": self.lr,
                "max_steps": self.max_steps,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        # A schedule shortened to fit a time budget stays shortened when the run resumes.
        self.epochs = min(self.epochs, int(state["options"]["epochs"]))
        self.max_steps = state["options"].get("max_steps")
        self.gen.set_state(state["rng"])
