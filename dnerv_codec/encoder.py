"""The encoder: from videos to one .dnerv file.

Steps (docs/ARCHITECTURE.md has the picture):

1. read every input once into uint8 RGB frames (:mod:`dnerv_codec.video`);
2. compress the keyframes with the chosen codec and keep the *decoded* keyframes: the network
   trains on exactly what the decoder will see;
3. pad and cut frames into patches (:mod:`dnerv_codec.geometry`), one stream per patch position;
4. overfit the network (:class:`dnerv_codec.train.Trainer`), with a progress bar, a wall-clock
   budget, checkpoints and resume;
5. optionally prune and fine-tune, then quantise (:mod:`dnerv_codec.quant`);
6. write the container atomically (``bitstream``), then decode the written file to measure
   what a user will actually get.
"""

from __future__ import annotations

import math
import signal
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from bitstream import ids
from bitstream.container import write_container
from bitstream.keyframes import pack_keyframes
from bitstream.meta import SECTION_METADATA_DEFLATE, deflate_meta
from dnerv_codec import distributed, framecache, quant, ratecontrol
from dnerv_codec._version import __version__
from dnerv_codec.checkpoint import Checkpoint
from dnerv_codec.clips import CLIP_LENGTH, keyframe_frames
from dnerv_codec.decoder import SECTION_KEYFRAMES, resolve_device
from dnerv_codec.errors import InputError, Interrupted, OutputExistsError
from dnerv_codec.geometry import choose_geometry, to_patches
from dnerv_codec.model import build_model, get_preset, required_multiple
from dnerv_codec.progress import Progress
from dnerv_codec.video import Video

OFFICIAL_LR, OFFICIAL_BATCH = 5e-4, 2
DEFAULT_RATE_QUALITY = 6.0  # `dnerv encode IN OUT` alone: --quality 6 (0.155 bpp)


@dataclass
class EncodeOptions:
    """Every knob of :func:`encode`; the CLI's options map one to one onto these."""

    preset: str | None = None  # a fixed network; None: rate control (DEFAULT_RATE_QUALITY)
    epochs: int = 60
    time_budget: float | None = None  # seconds of training; stops with the best state so far
    batch_size: int | None = None  # clips per step; None: the preset's (else the official 2)
    lr: float | None = None  # peak learning rate; None: the preset's (else the official 5e-4)
    loss: str = "uvg"
    keyframe_codec: str | None = None  # None: ratecontrol.KEYFRAME_CODEC / keyframe.DEFAULT_CODEC
    keyframe_quality: int | None = None
    keyframe_weights: str | None = None
    prune: float | None = None  # fixed presets: 0 (rate control chooses its own)
    finetune_epochs: int = 0  # after pruning; default: a tenth of the epochs
    quant_bits: int | None = None  # fixed presets: 8 (rate control chooses its own)
    quant_scheme: str = "symmetric"
    device: str = "auto"
    amp: bool = False  # bf16 autocast in training (measured slower for small networks)
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 10
    resume: bool = False
    max_frames: int | None = None
    quiet: bool = False
    force: bool = False
    verify: bool = True  # decode the written file and measure PSNR / MS-SSIM
    cache_dir: str | None = None  # memory-map frames from a cache here (dnerv_codec.framecache)
    dist_timeout: float = 3600.0  # seconds a distributed collective may wait (torchrun)
    # Rate control (dnerv_codec.ratecontrol): at most one of the three, and not with a preset,
    # prune or quant_bits, which the controller chooses. With none of them and no preset, the
    # encoder uses rate control at quality DEFAULT_RATE_QUALITY.
    target_bpp: float | None = None
    target_size: int | None = None
    quality: float | None = None
    # Quantisation-aware fine-tuning epochs after rate control lands; None: ratecontrol.qat_share
    # of the epochs trained, inside the time budget.
    qat_epochs: int | None = None
    clip_length: int | None = None  # a keyframe every N frames; None: by the rate / official 8
    weight_rate: float = 0.0  # entropy-aware training: loss += this x estimated weight bpp
    # Set by validate(): no rate knob and no preset were given, so the default rate may rise to
    # what a tiny input needs (ratecontrol.plan's raise_to_feasible).
    _default_rate: bool = field(default=False, init=False, repr=False)

    @property
    def rate_controlled(self) -> bool:
        return any(v is not None for v in (self.target_bpp, self.target_size, self.quality))

    def validate(self) -> None:
        knobs = sum(v is not None for v in (self.target_bpp, self.target_size, self.quality))
        if knobs > 1:
            raise InputError("--target-bpp, --target-size and --quality are mutually exclusive")
        if knobs and self.preset is not None:
            raise InputError(
                "--preset fixes the network and rate control (--target-bpp, --target-size, "
                "--quality) sizes it: give one of them"
            )
        # kept on a second validate(), when quality is already set
        self._default_rate = self._default_rate or (self.preset is None and not knobs)
        if self._default_rate:
            self.quality = DEFAULT_RATE_QUALITY
        if self.rate_controlled:
            for name, value in (("--prune", self.prune), ("--quant-bits", self.quant_bits)):
                if value is not None:
                    raise InputError(
                        f"{name} is chosen by rate control; name a --preset to set it yourself"
                    )
        else:
            self.prune = 0.0 if self.prune is None else self.prune
            self.quant_bits = 8 if self.quant_bits is None else self.quant_bits
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.time_budget is None or self.time_budget > 0, "--time-budget must be positive"),
            (self.batch_size is None or self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.lr is None or self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (
                self.prune is None or 0.0 <= self.prune < 1.0,
                f"--prune must be in [0, 1), got {self.prune}",
            ),
            (
                self.quant_bits is None or 2 <= self.quant_bits <= 16,
                f"--quant-bits must be in 2..16, got {self.quant_bits}",
            ),
            (self.quant_scheme in quant.SCHEMES, f"--quant-scheme must be one of {quant.SCHEMES}"),
            (self.loss in ("uvg", "ucf"), f"--loss must be uvg or ucf, got {self.loss!r}"),
            (self.checkpoint_every >= 1, "--checkpoint-every must be at least 1"),
            (not self.resume or self.checkpoint_dir, "--resume needs --checkpoint-dir"),
            (self.finetune_epochs >= 0, "--finetune-epochs must not be negative"),
            (self.dist_timeout > 0, "--dist-timeout must be positive"),
            (self.target_bpp is None or self.target_bpp > 0, "--target-bpp must be positive"),
            (self.target_size is None or self.target_size > 0, "--target-size must be positive"),
            (self.qat_epochs is None or self.qat_epochs >= 0, "--qat-epochs must not be negative"),
            (
                not self.qat_epochs or self.rate_controlled,
                "--qat-epochs fine-tunes under rate control: drop --preset",
            ),
            (self.weight_rate >= 0, "--weight-rate must not be negative"),
            (self.clip_length is None or 2 <= self.clip_length <= 64, "--clip-length: 2..64"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        # Under rate control the model is the compact family's, and so are the training defaults.
        preset = ratecontrol.PRESET if self.rate_controlled else self.preset
        training = get_preset(preset).training  # raises InputError on an unknown preset
        if self.lr is None:
            self.lr = float(training.get("lr", OFFICIAL_LR))
        if self.batch_size is None:
            self.batch_size = int(training.get("batch_size", OFFICIAL_BATCH))
        if self.clip_length is None and not self.rate_controlled:  # rate control: by the rate
            self.clip_length = CLIP_LENGTH
        if self.keyframe_codec is None and self.rate_controlled:
            self.keyframe_codec = ratecontrol.KEYFRAME_CODEC


@dataclass
class EncodeReport:
    """What an encode produced, measured on the written file."""

    output: str
    bytes: int
    weight_bytes: int
    keyframe_bytes: int
    overhead_bytes: int
    pixels: int
    bpp: float
    psnr: float | None
    ms_ssim: float | None
    parameters: int
    epochs: int
    train_seconds: float
    encode_seconds: float
    videos: list[dict] = field(default_factory=list)
    rate: dict | None = None  # rate control's choices, when a target was given

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        quality = (
            f"PSNR {self.psnr:.2f} dB, MS-SSIM {self.ms_ssim:.4f}"
            if self.psnr is not None
            else "not verified"
        )
        return (
            f"{self.output}: {self.bytes:,} bytes = {self.bpp:.4f} bpp "
            f"(weights {self.weight_bytes:,}, keyframes {self.keyframe_bytes:,}, "
            f"container {self.overhead_bytes:,}); {quality}; "
            f"{self.parameters:,} parameters, {self.epochs} epochs in {self.train_seconds:.0f} s"
            + (
                f"; rate control: target {self.rate['target_bytes']:,} bytes, keyframe quality "
                f"{self.rate['keyframe_quality']}, a keyframe every "
                f"{self.rate.get('clip_length', 8)} frames, compact width {self.rate['width']}, "
                f"{self.rate['quant_bits']}-bit weights, {self.rate['prune']:.1%} pruned"
                if self.rate
                else ""
            )
        )


class _Interrupted(Exception):
    """Raised from a SIGTERM handler so the encoder saves a checkpoint before it stops."""


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and not force:
        raise OutputExistsError(f"{output} exists; use --force to overwrite it")
    if output.exists() and output.is_dir():
        raise InputError(f"{output} is a folder, not a file name")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {output}: folder {parent} does not exist")


def _norm_stats(videos: list[Video]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of all frames in [0, 1] (the set's normalisation)."""
    total, total_sq, count = framecache.frame_moments(videos)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-6))
    return [round(float(x), 6) for x in mean], [round(float(x), 6) for x in std]


def _keyframes(videos, codec, ckpt: Checkpoint | None, progress: Progress, clip_length: int):
    """Compress every video's keyframes; return bitstreams and decoded keyframes per video."""
    streams = ckpt.load_keyframes() if ckpt is not None else None
    decoded = []
    if streams is None:
        streams = {}
        for v, video in enumerate(progress.iter(videos, "keyframes")):
            frames = video.frames[keyframe_frames(video.num_frames, clip_length)]
            data, recon = codec.compress_with_reconstruction(frames)
            streams.update({(v, k): d for k, d in enumerate(data)})
            decoded.append(recon)
        if ckpt is not None:
            ckpt.save_keyframes(streams)
    else:
        for v, video in enumerate(videos):
            count = len(keyframe_frames(video.num_frames, clip_length))
            data = [streams[(v, k)] for k in range(count)]
            decoded.append(codec.decompress(data, (video.height, video.width)))
    return streams, decoded


def encode(
    inputs: Sequence[str | Path] | str | Path, output: str | Path, **options
) -> EncodeReport:
    """Encode a video set into one .dnerv file.

    Args:
        inputs: video files, folders of frames, or folders of videos (one shared model).
        output: the .dnerv file to write (atomically; an existing file needs ``force=True``).
        **options: fields of :class:`EncodeOptions`.

    Under torchrun (``WORLD_SIZE`` > 1) the processes encode the set together, rank 0 writing the
    file: see :mod:`dnerv_codec.distributed`.

    Returns:
        An :class:`EncodeReport` measured on the written file (on ranks other than 0 of a
        distributed run: not verified, ``psnr`` None).

    Raises:
        InputError, OutputExistsError, WeightsError: bad inputs or options (before any work).
    """
    try:
        opts = EncodeOptions(**options)
    except TypeError as exc:
        raise InputError(f"unknown encode option: {exc}") from None
    opts.validate()
    with distributed.session(resolve_device(opts.device), opts.dist_timeout) as dist:
        return _encode(inputs, output, opts, dist)


def _encode(inputs, output, opts: EncodeOptions, dist: distributed.Context) -> EncodeReport:
    from dnerv_codec.keyframe import DEFAULT_CODEC, DEFAULT_QUALITY, get_codec

    start_time = time.monotonic()
    output = Path(output)
    dist.on_main(lambda: _check_output(output, opts.force))
    device = dist.device
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not inputs:
        raise InputError("no input given")
    codec_name = opts.keyframe_codec or DEFAULT_CODEC
    quality = opts.keyframe_quality if opts.keyframe_quality is not None else DEFAULT_QUALITY
    codec = get_codec(codec_name, quality, weights=opts.keyframe_weights)
    if opts.rate_controlled and dist.active:
        raise InputError(
            "rate control (the default, or --target-bpp, --target-size, --quality) runs in one "
            "process: under torchrun name a --preset"
        )
    progress = Progress(quiet=opts.quiet or not dist.is_main)
    videos = distributed.read_videos(inputs, opts.max_frames, opts.cache_dir, dist)
    # The model's default clip length is the paper's 8; only another length is an override.
    overrides = {} if opts.clip_length == CLIP_LENGTH else {"clip_length": opts.clip_length}
    preset, plan = opts.preset, None
    if opts.rate_controlled:
        plan = _rate_plan(videos, opts, codec_name, progress)
        preset, overrides = ratecontrol.PRESET, plan.overrides
        codec = get_codec(codec_name, plan.keyframe_quality, weights=opts.keyframe_weights)
    multiple = required_multiple(overrides.get("strides", preset))
    geometry = choose_geometry([(v.height, v.width) for v in videos], multiple)
    mean, std = _norm_stats(videos)
    torch.manual_seed(opts.seed)
    model = build_model(
        preset, (geometry.patch_h, geometry.patch_w), mean=mean, std=std, **overrides
    ).to(device)
    run = {
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
        run["overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    ckpt = dist.on_main(lambda: _open_checkpoint(opts, run))  # rank 0 alone writes it
    if dist.active:
        streams, decoded = distributed.keyframes(videos, codec, ckpt, progress, dist, model.T)
    else:
        streams, decoded = _keyframes(videos, codec, ckpt, progress, model.T)

    # One training stream per video and patch position.
    frame_streams, key_streams = [], []
    for video, keys in zip(videos, decoded, strict=True):
        frame_streams.extend(framecache.patch_streams(video.frames, geometry))
        key_streams.extend(torch.from_numpy(p) for p in to_patches(keys, geometry))
    trainer = _trainer(model, (frame_streams, key_streams), opts, device, opts.epochs)
    resume = opts.resume and ckpt is not None and ckpt.exists
    state = dist.on_main(lambda: ckpt.load_trainer() if resume else None, share=True)
    if state is not None:
        trainer.load_state_dict(state)
    # Under rate control, quantisation-aware fine-tuning follows training inside the time budget.
    qat_share = 0.0
    if plan is not None and opts.qat_epochs is None:
        qat_share = ratecontrol.qat_share(model.T)
    deadline = time.monotonic() + opts.time_budget if opts.time_budget else None
    train_seconds = _train(trainer, opts, ckpt, progress, qat_share)
    if plan is None and opts.prune > 0:  # under rate control, landing chooses the pruning
        _prune_and_finetune(
            model, frame_streams, key_streams, opts, trainer.epoch, device, progress
        )

    keyframes = pack_keyframes(streams)

    def make_meta(bits: int, prune: float) -> dict:
        return {
            "encoder": f"dnerv-codec {__version__}",
            "videos": [
                {
                    "name": v.name,
                    "frames": v.num_frames,
                    "width": v.width,
                    "height": v.height,
                    "fps_num": v.fps.numerator,
                    "fps_den": v.fps.denominator,
                }
                for v in videos
            ],
            "clip_length": model.T,
            "geometry": geometry.to_meta(),
            "model": {"arch": ids.id_of(ids.ARCHITECTURES, "dnerv"), "config": model.config},
            "norm": {"mean": mean, "std": std},
            "keyframe": {
                "codec": codec.codec_id,
                "name": codec.name,
                "quality": codec.quality,
                "weights_digest": codec.weights_digest,
            },
            "quant": {
                "bits": bits,
                "scheme": opts.quant_scheme,
                "prune": prune,
                "preset": preset,
            },
        }

    def make_sections(
        weights: tuple[int, bytes], bits: int, prune: float
    ) -> list[tuple[int, bytes]]:
        sections = [
            (SECTION_METADATA_DEFLATE, deflate_meta(make_meta(bits, prune))),
            (SECTION_KEYFRAMES, keyframes),
            weights,  # (section type, payload): quant.pack_records
        ]
        return sorted(sections, key=lambda section: section[0])  # types ascend in a file

    rate = None
    if plan is not None:
        qat_epochs = opts.qat_epochs
        if qat_epochs is None:
            qat_epochs = round(qat_share * trainer.epoch)
        weights, bits, prune, rate = _rate_land(
            model,
            trainer,
            (frame_streams, key_streams),
            plan,
            make_sections,
            (qat_epochs, deadline),
            opts,
            progress,
        )
    else:
        bits, prune = opts.quant_bits, opts.prune
        records = quant.quantize_state(model.state_dict(), bits, opts.quant_scheme)
        weights = quant.pack_records(records)
    meta = make_meta(bits, prune)
    sections = make_sections(weights, bits, prune)
    size = dist.on_main(lambda: write_container(output, sections, overwrite=opts.force), share=True)
    pixels = sum(v.num_frames * v.width * v.height for v in videos)
    psnr = ms_ssim = None
    if opts.verify and dist.is_main:
        psnr, ms_ssim = _verify(output, videos, opts, progress)
    return EncodeReport(
        output=str(output),
        bytes=size,
        weight_bytes=len(weights[1]),
        keyframe_bytes=len(keyframes),
        overhead_bytes=size - len(weights[1]) - len(keyframes),
        pixels=pixels,
        bpp=size * 8 / pixels,
        psnr=psnr,
        ms_ssim=ms_ssim,
        parameters=sum(p.numel() for p in model.parameters()),
        epochs=trainer.epoch,
        train_seconds=train_seconds,
        encode_seconds=time.monotonic() - start_time,
        videos=meta["videos"],
        rate=rate,
    )


_STAGE_LR = (1.0, 0.5, 0.2)  # training, fine-tuning after pruning, quantisation-aware tuning


def _trainer(model, streams, opts: EncodeOptions, device, epochs: int, stage: int = 0, **kw):
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


def _open_checkpoint(opts: EncodeOptions, run: dict) -> Checkpoint | None:
    if not opts.checkpoint_dir:
        return None
    ckpt = Checkpoint(opts.checkpoint_dir, run)
    if not opts.resume and ckpt.exists:
        raise InputError(
            f"{opts.checkpoint_dir} already holds a checkpoint: add --resume to continue it, "
            "or name an empty folder"
        )
    return ckpt


def _rate_plan(videos, opts: EncodeOptions, codec_name: str, progress: Progress):
    """Rate control before training: budget, keyframe quality, model width."""
    if opts.quant_scheme != "symmetric":
        raise InputError("rate control quantises symmetrically: drop --quant-scheme affine")
    pixels = sum(v.num_frames * v.width * v.height for v in videos)
    target = ratecontrol.target_bytes(pixels, opts.target_bpp, opts.target_size, opts.quality)
    clip_length = opts.clip_length or ratecontrol.clip_length_for(target * 8 / pixels)
    return ratecontrol.plan(
        videos,
        target,
        codec_name,
        keyframe_weights=opts.keyframe_weights,
        fixed_quality=opts.keyframe_quality,
        clip_length=clip_length,
        log=progress.write,
        raise_to_feasible=opts._default_rate,
    )


def _rate_land(
    model, trainer, streams, plan, make_sections, qat, opts: EncodeOptions, progress: Progress
):
    """Rate control after training: bits and pruning that land the file in the window, then
    ``qat = (epochs, deadline)`` of quantisation-aware fine-tuning and a second landing, kept if
    its file reconstructs the training frames better."""
    from bitstream.container import ContainerWriter

    def file_size(weights: tuple[int, bytes], bits: int, prune: float) -> int:
        writer = ContainerWriter()
        for type_id, payload in make_sections(weights, bits, prune):
            writer.add(type_id, payload)
        return len(writer.finish())

    def evaluate(bits: int, prune: float) -> float:
        return ratecontrol.evaluate_quantised(trainer, bits, prune)

    def measured(landing):
        if landing.psnr is None:  # landing scores only when it has more than one candidate
            landing.psnr = evaluate(landing.bits, landing.prune)
        return landing

    landing = ratecontrol.land(model, plan.target, file_size, evaluate)
    qat_epochs, deadline = qat
    qat_report = None
    if qat_epochs > 0:
        before = measured(landing)

        def factory(epochs, on_step):
            return _trainer(
                model, streams, opts, trainer.device, epochs, stage=2, warmup=0.0, on_step=on_step
            )

        progress.write(
            f"rate control: {qat_epochs} epoch{'s' if qat_epochs != 1 else ''} of "
            "quantisation-aware fine-tuning at "
            f"{landing.bits} bits, {landing.prune:.1%} pruned"
        )
        tuner = ratecontrol.quantisation_aware_finetune(
            factory, model, landing.bits, landing.prune, qat_epochs, deadline
        )
        after = measured(ratecontrol.land(model, plan.target, file_size, evaluate))
        kept = after.psnr >= before.psnr
        qat_report = {
            "epochs": tuner.epoch,
            "psnr_before": round(before.psnr, 3),
            "psnr_after": round(after.psnr, 3),
            "kept": kept,
        }
        progress.write(
            f"rate control: fine-tuned {before.psnr:.2f} -> {after.psnr:.2f} dB on the training "
            f"frames ({'kept' if kept else 'not kept'})"
        )
        landing = after if kept else before
    progress.write(
        f"rate control: {landing.bits}-bit weights, {landing.prune:.1%} pruned -> "
        f"{landing.size:,} of {plan.target:,} bytes"
    )
    rate = ratecontrol.describe(plan, landing)
    if qat_report is not None:
        rate["qat"] = qat_report
    return landing.weights, landing.bits, landing.prune, rate


def _train(
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
    at ``ratecontrol.QAT_EPOCH_COST`` x ``epoch_seconds`` (a training epoch). None: no budget."""
    if not opts.time_budget:
        return None
    cost = ratecontrol.QAT_EPOCH_COST
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


def _prune_and_finetune(
    model, frames, keys, opts: EncodeOptions, trained: int, device, progress
) -> None:
    """Global magnitude pruning, then fine-tuning with the mask held (NeRV's recipe): by default
    for a tenth of the epochs trained."""
    masks = quant.magnitude_masks(model, opts.prune)
    quant.apply_masks(model, masks)
    epochs = opts.finetune_epochs or max(1, trained // 10)
    tuner = _trainer(
        model,
        (frames, keys),
        opts,
        device,
        epochs,
        stage=1,
        on_step=lambda _stats: quant.apply_masks(model, masks),
    )
    for _ in progress.iter(range(epochs), "fine-tuning after pruning"):
        tuner.run_epoch()
    quant.apply_masks(model, masks)


def _verify(output: Path, videos: list[Video], opts: EncodeOptions, progress: Progress):
    """Decode the written file and measure it against the source frames."""
    from dnerv_codec.decoder import DnervFile
    from dnerv_codec.metrics import ms_ssim_rgb, psnr_rgb

    psnrs, ssims, weights = [], [], []
    with DnervFile(output, device=opts.device, keyframe_weights=opts.keyframe_weights) as f:
        for v, video in enumerate(progress.iter(videos, "verifying")):
            decoded = np.stack(list(f.frames(v)))
            psnrs.append(psnr_rgb(video.frames, decoded))
            ssims.append(ms_ssim_rgb(video.frames, decoded))
            weights.append(video.num_frames)
    return float(np.average(psnrs, weights=weights)), float(np.average(ssims, weights=weights))
