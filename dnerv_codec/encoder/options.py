"""What an encode is asked to do (:class:`EncodeOptions`) and what it produced
(:class:`EncodeReport`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from dnerv_codec import quant
from dnerv_codec.clips import CLIP_LENGTH
from dnerv_codec.errors import InputError
from dnerv_codec.model import get_preset
from dnerv_codec.ratecontrol import DEFAULT, RateControlConfig

OFFICIAL_LR, OFFICIAL_BATCH = 5e-4, 2
DEFAULT_EPOCHS = 60
# --speed: seconds of training per megapixel of video (all frames of the set), and at least;
# the time it takes is then the video's size times a constant, like an x264 preset's. "none":
# no budget, --epochs alone. Without --speed, --time-budget and --epochs: medium.
SPEEDS = {"fast": (1.0, 30.0), "medium": (4.0, 120.0), "slow": (16.0, 600.0), "none": None}


def speed_budget(speed: str, pixels: int) -> float | None:
    """The training budget in seconds that ``--speed`` gives a set of ``pixels`` pixels."""
    rate = SPEEDS[speed]
    if rate is None:
        return None
    per_megapixel, least = rate
    return max(least, per_megapixel * pixels / 1e6)


# --mode: "auto" codes the set with the network and, under rate control, also keyframe-only at
# the same budget, keeping the better file; "network" never falls back; "keyframes" codes every
# frame as a keyframe and trains nothing.
MODES = ("auto", "network", "keyframes")

DEFAULT_RATE_QUALITY = 6.0  # `dnerv encode IN OUT` alone: --quality 6 (0.155 bpp)


@dataclass
class EncodeOptions:
    """Every knob of :func:`encode`; the CLI's options map one to one onto these."""

    preset: str | None = None  # a fixed network; None: rate control (DEFAULT_RATE_QUALITY)
    epochs: int | None = None  # the schedule's length (its upper bound under a budget); 60
    time_budget: float | None = None  # seconds of training; stops with the best state so far
    # the budget per megapixel (SPEEDS); None: "medium" unless epochs or time_budget is given
    speed: str | None = None
    batch_size: int | None = None  # clips per step; None: the preset's (else the official 2)
    lr: float | None = None  # peak learning rate; None: the preset's (else the official 5e-4)
    loss: str = "uvg"
    # None: rate_control.keyframe_codec under rate control, keyframe.DEFAULT_CODEC with a preset
    keyframe_codec: str | None = None
    keyframe_quality: int | None = None  # None: chosen by rate control / keyframe.DEFAULT_QUALITY
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
    # Quantisation-aware fine-tuning epochs after rate control lands; None: the config's share
    # of the epochs trained (RateControlConfig.qat_share_for), inside the time budget.
    qat_epochs: int | None = None
    clip_length: int | None = None  # a keyframe every N frames; None: by the rate / official 8
    weight_rate: float = 0.0  # entropy-aware training: loss += this x estimated weight bpp
    rate_control: RateControlConfig = DEFAULT  # every setting of rate control (ablations: a copy)
    mode: str = "auto"  # MODES
    cuts: bool = True  # every scene cut starts a clip (dnerv_codec.clips.find_cuts)
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
            (self.epochs is None or self.epochs >= 1, "--epochs must be at least 1"),
            (self.time_budget is None or self.time_budget > 0, "--time-budget must be positive"),
            (self.speed in (None, *SPEEDS), f"--speed must be one of {', '.join(SPEEDS)}"),
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
            (self.mode in MODES, f"--mode must be one of {', '.join(MODES)}"),
            (
                self.mode == "keyframes" or not _keyframe_only_codec(self.keyframe_codec),
                f"--keyframe-codec {self.keyframe_codec} codes keyframe-only files: add --mode "
                "keyframes (the keyframe-only files of hevc-ra use it where it helps)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        if self.speed is None:  # a length the user asked for is kept as asked
            self.speed = "none" if self.epochs or self.time_budget else "medium"
        if self.epochs is None:
            self.epochs = DEFAULT_EPOCHS
        # Under rate control the model is the compact family's, and so are the training defaults.
        preset = self.rate_control.preset if self.rate_controlled else self.preset
        training = get_preset(preset).training  # raises InputError on an unknown preset
        if self.lr is None:
            self.lr = float(training.get("lr", OFFICIAL_LR))
        if self.batch_size is None:
            self.batch_size = int(training.get("batch_size", OFFICIAL_BATCH))
        if self.clip_length is None and not self.rate_controlled:  # rate control: by the rate
            self.clip_length = CLIP_LENGTH
        if self.keyframe_codec is None:
            from dnerv_codec.keyframe import DEFAULT_CODEC

            self.keyframe_codec = (
                self.rate_control.keyframe_codec if self.rate_controlled else DEFAULT_CODEC
            )
        if self.keyframe_quality is None and not self.rate_controlled:
            from dnerv_codec.keyframe import DEFAULT_QUALITY

            self.keyframe_quality = DEFAULT_QUALITY


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
    # The spread of per-frame PSNR when verified: the worst frame, where it is, and how far
    # below the mean (a viewer sees the worst frame).
    frame_psnr: dict | None = None
    # "network", or "keyframes" for a keyframe-only file (no network; --mode)
    structure: str = "network"
    # the other coding --mode auto measured at the same budget: structure, bytes, psnr
    alternative: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        quality = f"PSNR {self.psnr:.2f} dB" if self.psnr is not None else "not verified"
        if self.ms_ssim is not None:  # the floor measures PSNR alone when not verifying
            quality += f", MS-SSIM {self.ms_ssim:.4f}"
        if self.frame_psnr is not None:
            worst = self.frame_psnr
            quality += (
                f" (worst frame {worst['min']:.2f} dB, {worst['video']} frame {worst['frame']})"
            )
        head = (
            f"{self.output}: {self.bytes:,} bytes = {self.bpp:.4f} bpp "
            f"(weights {self.weight_bytes:,}, keyframes {self.keyframe_bytes:,}, "
            f"container {self.overhead_bytes:,}); {quality}; "
        )
        other = self.alternative
        versus = (
            f"; the {other['structure']} coding at the same budget: {other['bytes']:,} bytes, "
            f"{other['psnr']:.2f} dB"
            if other
            else ""
        )
        if self.structure == "keyframes":
            return head + "keyframe-only (every frame a keyframe, no network)" + versus
        return (
            head
            + f"{self.parameters:,} parameters, {self.epochs} epochs in {self.train_seconds:.0f} s"
            + (
                f"; rate control: target {self.rate['target_bytes']:,} bytes, keyframe quality "
                f"{self.rate['keyframe_quality']}, a keyframe every "
                f"{self.rate.get('clip_length', 8)} frames, compact width {self.rate['width']}, "
                f"{self.rate['quant_bits']}-bit weights, {self.rate['prune']:.1%} pruned"
                if self.rate
                else ""
            )
            + versus
        )


def _keyframe_only_codec(name: str | None) -> bool:
    from dnerv_codec.keyframe import available, keyframe_only

    return name in available() and keyframe_only(name)
