"""The encoder's stages, in the order :func:`run` calls them:

1. :func:`prepare`: read the inputs, plan the rate (rate control), build the network, compress
   the keyframes (the network trains on the *decoded* keyframes, as the decoder sees them) and
   cut the frames into training streams;
2. :func:`fit`: train under the time budget, with checkpoints; with a fixed preset, prune and
   fine-tune;
3. :func:`land`: quantise and entropy-code the weights: rate control's landing, quantisation-
   aware fine-tuning and a second landing; or the preset's fixed quantisation;
4. :func:`write_and_verify`: write the container atomically and decode the written file to
   measure what a user will get;
5. :func:`report`: the :class:`EncodeReport`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bitstream.container import write_container
from bitstream.keyframes import pack_keyframes_compact
from bitstream.meta import validate_metadata
from dnerv_codec import distributed, framecache, quant, ratecontrol
from dnerv_codec.checkpoint import Checkpoint
from dnerv_codec.clips import CLIP_LENGTH, Structure
from dnerv_codec.errors import InputError
from dnerv_codec.geometry import Geometry, choose_geometry
from dnerv_codec.memory import trim
from dnerv_codec.model import build_model, required_multiple
from dnerv_codec.progress import Progress
from dnerv_codec.video import Video

from .eta import EndEstimate
from .fitting import make_trainer, prune_and_finetune, quantisation_aware_finetune, train
from .inputs import check_output, find_shot_cuts, norm_stats, open_checkpoint, read_inputs
from .keyframe_only import floor, keyframes_only
from .options import EncodeOptions, EncodeReport, speed_budget
from .sections import FileAssembly, FileDescription, WeightsSection
from .verify import Verified, verify


@dataclass
class Prepared:
    """Everything training starts from."""

    videos: list[Video]
    codec: Any  # dnerv_codec.keyframe.KeyframeCodec at the chosen quality
    preset: str
    plan: ratecontrol.Plan | None  # None: a fixed preset
    geometry: Geometry
    norm: tuple[list[float], list[float]]  # the set's mean and std
    model: torch.nn.Module
    ckpt: Checkpoint | None
    keyframe_streams: dict[tuple[int, int], bytes]  # (video, keyframe) -> bitstream
    trainer: Any  # dnerv_codec.train.Trainer over the patch streams
    structures: list[Structure]  # where each video's keyframes are

    def assembly(self, quant_scheme: str) -> FileAssembly:
        description = FileDescription.of(
            self.videos,
            self.model,
            self.geometry,
            self.norm,
            self.codec,
            quant_scheme,
            self.preset,
            self.structures,
        )
        return FileAssembly(description, pack_keyframes_compact(self.keyframe_streams))


@dataclass
class Fitted:
    train_seconds: float
    deadline: float | None  # monotonic time the time budget ends, if one was given
    qat_share: float  # quantisation-aware fine-tuning epochs per epoch trained (default)


@dataclass
class Landed:
    weights: WeightsSection
    bits: int
    prune: float
    rate: dict[str, Any] | None  # rate control's choices, for the report


def run(inputs, output, opts: EncodeOptions, dist: distributed.Context) -> EncodeReport:
    """Encode ``inputs`` into ``output`` (see :func:`dnerv_codec.encoder.encode`)."""
    start = time.monotonic()
    output = Path(output)
    progress = Progress(quiet=opts.quiet or not dist.is_main)
    dist.on_main(lambda: check_output(output, opts.force))
    videos, scratch = read_inputs(inputs, output, opts, dist)
    if opts.mode == "keyframes":
        return keyframes_only(output, videos, opts, dist, progress, start)
    frames = sum(v.num_frames for v in videos)
    eta = EndEstimate(progress.write, frames, None, opts.mode == "auto", start)
    try:
        prep = prepare(videos, scratch, output, opts, dist, progress, eta)
    except ratecontrol.TargetTooSmall as exc:
        if opts.mode != "auto":
            raise
        progress.write(f"rate control: {exc}; coding every frame as a keyframe instead")
        return keyframes_only(output, videos, opts, dist, progress, start, exc.target, exc)
    timed = prep.plan is not None  # the end is estimated under rate control (planning's probes)
    if timed:
        eta.next_stage()
    steps = prep.trainer.step
    trim()
    fitted = fit(prep, opts, progress)
    trim()
    assembly = prep.assembly(opts.quant_scheme)
    landed = land(prep, assembly, fitted, opts, progress)
    trim()
    if timed:
        eta.network(*_step_cost(prep, fitted.train_seconds, prep.trainer.step - steps))
        eta.next_stage()
    size, quality = write_and_verify(output, assembly, landed, prep.videos, opts, dist, progress)
    result = report(output, size, quality, prep, fitted, assembly, landed, start)
    if opts.mode == "auto" and prep.plan is not None and dist.is_main:
        eta.next_stage()
        result = floor(output, result, prep.plan, videos, opts, progress, start)
    return result


def _step_cost(prep: Prepared, seconds: float, steps: int) -> tuple[float, float]:
    """Seconds a training step took, and the whole frames a step covers (its clips' patches
    over the patches of a frame)."""
    trainer = prep.trainer
    patch_frames = sum(len(f) for f in trainer.frames)
    frames = sum(v.num_frames for v in prep.videos)
    per_step = trainer.batch_size * trainer.T * frames / max(1, patch_frames)
    return seconds / max(1, steps), per_step


def prepare(
    videos, scratch, output: Path, opts: EncodeOptions, dist, progress, eta: EndEstimate
) -> Prepared:
    """Plan, network, keyframes and training streams for the videos read by
    :func:`~.inputs.read_inputs` (``scratch``: where transient memory maps go; ``eta``: the end's
    estimate, which planning's probes start)."""
    from dnerv_codec.keyframe import get_codec

    codec = get_codec(
        opts.keyframe_codec, opts.keyframe_quality or 1, weights=opts.keyframe_weights
    )
    if opts.rate_controlled and dist.active and opts.batch_size < dist.world:
        opts.batch_size = dist.world  # the compact family trains one clip a step per process
    if opts.time_budget is None:  # --speed sets it from the size of the set
        pixels = sum(v.num_frames * v.width * v.height for v in videos)
        opts.time_budget = speed_budget(opts.speed, pixels)
        if opts.time_budget is not None:
            progress.write(
                f"--speed {opts.speed}: up to {opts.time_budget:,.0f} s of training for "
                f"{pixels / 1e6:,.1f} megapixels (--time-budget or --speed sets it)"
            )
    eta.budget = opts.time_budget
    cuts = dist.on_main(lambda: find_shot_cuts(videos, opts, progress), share=True)
    # The model's default clip length is the paper's 8; only another length is an override.
    overrides = {} if opts.clip_length == CLIP_LENGTH else {"clip_length": opts.clip_length}
    preset, plan = opts.preset, None
    if opts.rate_controlled:
        plan = dist.on_main(lambda: _plan(videos, opts, progress, cuts, eta), share=True)
        preset, overrides = opts.rate_control.preset, plan.overrides
        codec = get_codec(opts.keyframe_codec, plan.keyframe_quality, weights=opts.keyframe_weights)
    multiple = required_multiple(overrides.get("strides", preset))
    geometry = choose_geometry([(v.height, v.width) for v in videos], multiple)
    norm = norm_stats(videos)
    torch.manual_seed(opts.seed)
    model = build_model(
        preset, (geometry.patch_h, geometry.patch_w), mean=norm[0], std=norm[1], **overrides
    ).to(dist.device)
    run_identity = {
        "inputs": [v.name for v in videos],
        "frames": [list(v.frames.shape) for v in videos],
        "preset": preset,
        "keyframe": [codec.name, codec.quality, codec.weights_digest],
        "seed": opts.seed,
        "epochs": opts.epochs,
        "batch_size": opts.batch_size,
        "lr": opts.lr,
        "loss": opts.loss,
    }
    if overrides:
        run_identity["overrides"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()
        }
    if any(cuts):
        run_identity["cuts"] = cuts
    structures = [
        Structure.with_cuts(v.num_frames, model.T, c) for v, c in zip(videos, cuts, strict=True)
    ]
    ckpt = dist.on_main(lambda: open_checkpoint(opts, run_identity))  # rank 0 alone writes it
    known = plan.keyframe_streams if plan is not None else None
    streams, decoded = distributed.keyframes(
        videos, codec, ckpt, progress, dist, structures, scratch=scratch, known=known
    )
    # One training stream per video and patch position (read lazily from memory maps).
    frame_streams, key_streams, stream_structures = [], [], []
    for video, keys, structure in zip(videos, decoded, structures, strict=True):
        frame_streams.extend(framecache.patch_streams(video.frames, geometry))
        key_streams.extend(framecache.patch_streams(keys, geometry))
        stream_structures.extend([structure] * (len(frame_streams) - len(stream_structures)))
    trainer = make_trainer(
        model, (frame_streams, key_streams, stream_structures), opts, dist.device, opts.epochs
    )
    resume = opts.resume and ckpt is not None and ckpt.exists
    state = dist.on_main(lambda: ckpt.load_trainer() if resume else None, share=True)
    if state is not None:
        trainer.load_state_dict(state)
    return Prepared(
        videos, codec, preset, plan, geometry, norm, model, ckpt, streams, trainer, structures
    )


def fit(prep: Prepared, opts: EncodeOptions, progress: Progress) -> Fitted:
    """Train under the time budget; with a fixed preset, prune and fine-tune."""
    # Under rate control, quantisation-aware fine-tuning follows training inside the time budget.
    qat_share = 0.0
    if prep.plan is not None and opts.qat_epochs is None:
        qat_share = opts.rate_control.qat_share_for(prep.model.T)
    deadline = time.monotonic() + opts.time_budget if opts.time_budget else None
    seconds = train(prep.trainer, opts, prep.ckpt, progress, qat_share)
    if prep.plan is None and opts.prune > 0:  # under rate control, landing chooses the pruning
        streams = (prep.trainer.frames, prep.trainer.keyframes, prep.trainer.structures)
        prune_and_finetune(
            prep.model, streams, opts, prep.trainer.epoch, prep.trainer.device, progress
        )
    return Fitted(seconds, deadline, qat_share)


def land(
    prep: Prepared, assembly: FileAssembly, fitted: Fitted, opts: EncodeOptions, progress
) -> Landed:
    """The weights section: rate control's (land, fine-tune with the quantisation in the loop,
    land again, keep the better), or the preset's fixed quantisation."""
    if prep.plan is None:
        bits, prune = opts.quant_bits, opts.prune
        records = quant.quantize_state(prep.model.state_dict(), bits, opts.quant_scheme)
        return Landed(quant.pack_records(records), bits, prune, None)
    config, plan, trainer = opts.rate_control, prep.plan, prep.trainer

    def landing(scored: bool = True) -> ratecontrol.Landing:
        """Rank 0 lands (the others get its landing): the weights are the same on every rank."""

        def land_here() -> ratecontrol.Landing:
            found = ratecontrol.land(prep.model, plan.target, assembly.size, evaluate, config)
            if scored and found.psnr is None:  # land scores only with several candidates
                found.psnr = evaluate(found.bits, found.prune)
            return found

        return distributed.current().on_main(land_here, share=True)

    def evaluate(bits: int, prune: float) -> float:
        return ratecontrol.evaluate_quantised(
            trainer, bits, prune, config.min_per_channel, config.eval_clips
        )

    qat_epochs = opts.qat_epochs
    if qat_epochs is None:
        qat_epochs = round(fitted.qat_share * trainer.epoch)
    if qat_epochs > 0:
        before = landing()
        progress.write(
            f"rate control: {qat_epochs} epoch{'s' if qat_epochs != 1 else ''} of "
            f"quantisation-aware fine-tuning at {before.bits} bits, {before.prune:.1%} pruned"
        )
        tuner = quantisation_aware_finetune(
            trainer, opts, before.bits, before.prune, qat_epochs, fitted.deadline
        )
        after = landing()
        kept = after.psnr >= before.psnr
        progress.write(
            f"rate control: fine-tuned {before.psnr:.2f} -> {after.psnr:.2f} dB on the training "
            f"frames ({'kept' if kept else 'not kept'})"
        )
        chosen = after if kept else before
        qat_report = {
            "epochs": tuner.epoch,
            "psnr_before": round(before.psnr, 3),
            "psnr_after": round(after.psnr, 3),
            "kept": kept,
        }
    else:
        chosen = landing(scored=False)
        qat_report = None
    progress.write(
        f"rate control: {chosen.bits}-bit weights, {chosen.prune:.1%} pruned -> "
        f"{chosen.size:,} of {plan.target:,} bytes"
    )
    rate = ratecontrol.describe(plan, chosen)
    if qat_report is not None:
        rate["qat"] = qat_report
    return Landed(chosen.weights, chosen.bits, chosen.prune, rate)


def write_and_verify(
    output: Path,
    assembly: FileAssembly,
    landed: Landed,
    videos,
    opts: EncodeOptions,
    dist,
    progress,
) -> tuple[int, Verified | None]:
    """Write the file (rank 0, atomically) and, with ``verify``, decode it and measure it
    against the source frames."""
    # a file no reader would open is never written
    validate_metadata(assembly.description.meta(landed.bits, landed.prune))
    sections = assembly.sections(landed.weights, landed.bits, landed.prune)
    size = dist.on_main(lambda: write_container(output, sections, overwrite=opts.force), share=True)
    quality = None
    if opts.verify and dist.is_main:
        quality = verify(output, videos, opts, progress)
    return size, quality


def report(
    output: Path,
    size: int,
    quality: Verified | None,
    prep: Prepared,
    fitted: Fitted,
    assembly: FileAssembly,
    landed: Landed,
    start: float,
) -> EncodeReport:
    pixels = sum(v.num_frames * v.width * v.height for v in prep.videos)
    weight_bytes, keyframe_bytes = len(landed.weights[1]), len(assembly.keyframes)
    psnr, ms_ssim = (quality.psnr, quality.ms_ssim) if quality is not None else (None, None)
    return EncodeReport(
        output=str(output),
        bytes=size,
        weight_bytes=weight_bytes,
        keyframe_bytes=keyframe_bytes,
        overhead_bytes=size - weight_bytes - keyframe_bytes,
        pixels=pixels,
        bpp=size * 8 / pixels,
        psnr=psnr,
        ms_ssim=ms_ssim,
        parameters=sum(p.numel() for p in prep.model.parameters()),
        epochs=prep.trainer.epoch,
        train_seconds=fitted.train_seconds,
        encode_seconds=time.monotonic() - start,
        videos=[dict(v) for v in assembly.description.videos],
        rate=landed.rate,
        frame_psnr=quality.frame_psnr if quality is not None else None,
    )


# --------------------------------------------------------------------------- planning


def _plan(videos, opts: EncodeOptions, progress: Progress, cuts, eta) -> ratecontrol.Plan:
    """Rate control before training (rank 0): budget, keyframe quality, model width; each
    probe of the keyframe quality is timed for ``eta``, the end's estimate."""
    from dnerv_codec.keyframe import quality_range

    if opts.quant_scheme != "symmetric":
        raise InputError("rate control quantises symmetrically: drop --quant-scheme affine")
    config = opts.rate_control
    pixels = sum(v.num_frames * v.width * v.height for v in videos)
    target = ratecontrol.target_bytes(pixels, opts.target_bpp, opts.target_size, opts.quality)
    clip_length = opts.clip_length or config.clip_length_for(target * 8 / pixels)
    lo, hi = quality_range(opts.keyframe_codec)
    if opts.keyframe_quality is not None:
        lo = hi = opts.keyframe_quality
    eta.bisection(lo, hi)
    bar = progress.bar(total=eta.probes_left, desc="planning keyframes", unit="probe", leave=False)
    last = [time.monotonic()]

    def on_probe(quality: int, size: int, keyframes: int) -> None:
        now = time.monotonic()
        bar.set_postfix(quality=quality, bytes=f"{size:,}", refresh=False)
        bar.update(1)
        eta.probe(now - last[0], keyframes)
        last[0] = now

    with bar:
        return ratecontrol.plan(
            videos,
            target,
            opts.keyframe_codec,
            config=config,
            keyframe_weights=opts.keyframe_weights,
            fixed_quality=opts.keyframe_quality,
            clip_length=clip_length,
            log=progress.write,
            raise_to_feasible=opts._default_rate,
            cuts=cuts,
            on_probe=on_probe,
        )
