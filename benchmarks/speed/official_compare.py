"""The official D-NeRV code and ours, side by side: same clip, same machine, same configuration.

Usage::

    git clone https://github.com/boheumd/D-NeRV /path/to/D-NeRV   # the official code (MIT)
    .venv/bin/pip install pytorch-msssim                          # the official code's SSIM
    .venv/bin/python benchmarks/speed/official_compare.py --official-dir /path/to/D-NeRV [--seed S]
    .venv/bin/python benchmarks/speed/official_compare.py --official-dir /path/to/D-NeRV \\
        --part speed

What runs (``--part fit``, the default):

- **official**: the official ``DNeRV`` module (``model.py``), loss (``loss.py``, ``Fusion6`` =
  0.7 L1 + 0.3 (1 - SSIM), the UVG setting), learning-rate schedule (``utils.adjust_lr``: 20 %
  warm-up from 0.1x, then cosine), time encoding (``utils.PositionalEncoding('1.25_240')``) and
  8-bit quantiser (``utils.quantize_per_tensor``, axis 1 for weights, as ``train.py --quant_model``
  does), all imported from the user's checkout. Only the loop is this script's: ``train.py``
  itself needs CUDA and reads a folder layout, so the clip tensors are built here exactly as
  ``dataset.Dataset_DNeRV_UVG`` builds them (1-based frame numbers, keyframes at every 8th frame
  and the last, ``input_index = (f - 1) / (L - 1)``, ``backward_distance = (f - start) /
  max(1, end - start)``, keyframes normalised with the UVG mean and std), and the steps follow
  ``train.py``: AdamW (0.9, 0.999, no weight decay), lr 5e-4, shuffled batches of 2 clips with
  ``drop_last``, lr set per step. ``loss.py`` imports ``torchvision.transforms`` without using it;
  when torchvision is not installed an empty module stands in for it.
- **ours**: ``dnerv_codec.encode(preset="official-small", epochs=60, batch_size=2,
  keyframe_codec="png")``, the same network size and schedule, the whole encoder (reading,
  training, quantising, writing the file, decoding it to measure).

Both fit the sample clip scaled to 176x144 (64 frames = 8 clips, 4 steps per epoch, lossless
keyframes) with the ``small`` configuration of docs/METHOD.md's official-code figures (fc_hw 9_11,
fc_dim 14, strides 2,2,2,2: 1,245,829 parameters), the same ``--seed``, on ``--threads`` CPU
threads. PSNR is the mean over frames of the RGB PSNR of 8-bit frames
(``dnerv_codec.metrics.psnr_rgb``); the official run's own float PSNR (``loss.psnr_fn``) is
printed next to it.

``--part speed``: the two networks alone (no data loading, no file), the official ``small`` and
``uvg-xs`` configurations, training steps and one-clip inference timed in alternation in one
process on the same random inputs.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import types
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np
import torch
from _common import CLIP, scaled_copy

import dnerv_codec
from dnerv_codec.metrics import psnr_rgb
from dnerv_codec.video import read_video

UVG_MEAN = [0.4519, 0.4505, 0.4519]  # train.py's UVG statistics
UVG_STD = [0.2434, 0.2547, 0.2958]
CLIP_SIZE = 8


def _import_official(official_dir: Path):
    if not (official_dir / "model.py").is_file():
        sys.exit(f"error: {official_dir} has no model.py (clone boheumd/D-NeRV there)")
    try:
        import torchvision  # noqa: F401
    except ImportError:  # loss.py imports torchvision.transforms and never uses it
        stand_in = types.ModuleType("torchvision")
        stand_in.transforms = types.ModuleType("torchvision.transforms")
        sys.modules["torchvision"] = stand_in
        sys.modules["torchvision.transforms"] = stand_in.transforms
    sys.path.insert(0, str(official_dir))
    try:
        import loss
        import model
        import utils
    except ImportError as exc:
        sys.exit(f"error: importing the official code failed ({exc}); pip install pytorch-msssim")
    return model, loss, utils


def official_clips(frames: np.ndarray) -> list[tuple[torch.Tensor, ...]]:
    """One (video, input_index, keyframe, backward_distance, frame_mask) per clip, as
    ``Dataset_DNeRV_UVG.__getitem__`` returns them for a video of these frames."""
    length = len(frames)
    rgb = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255  # [3, L, H, W]
    mean = torch.tensor(UVG_MEAN).view(3, 1, 1)
    std = torch.tensor(UVG_STD).view(3, 1, 1)
    clips = []
    for c in range(math.ceil(length / CLIP_SIZE)):
        start, end = c * CLIP_SIZE + 1, min(length, (c + 1) * CLIP_SIZE + 1)  # 1-based
        wanted = range(c * CLIP_SIZE + 1, (c + 1) * CLIP_SIZE + 1)
        mask = torch.tensor([f <= length for f in wanted])
        index = [min(f, length) for f in wanted]
        video = rgb[:, [f - 1 for f in index]]
        input_index = torch.tensor([(f - 1) / (length - 1) for f in index])
        keyframe = torch.stack([(rgb[:, k - 1] - mean) / std for k in (start, end)], dim=1)
        distance = torch.tensor([(f - start) / max(1, end - start) for f in index])
        clips.append((video, input_index, keyframe, distance, mask))
    return clips


def _batches(clips, batch: int, shuffle: bool):
    order = torch.randperm(len(clips)).tolist() if shuffle else list(range(len(clips)))
    stop = len(order) - len(order) % batch if shuffle else len(order)  # train: drop_last
    for i in range(0, stop, batch):
        chosen = [clips[j] for j in order[i : i + batch]]
        yield [torch.stack(parts) for parts in zip(*chosen, strict=True)]


@torch.no_grad()
def _evaluate(net, clips, pe, loss) -> tuple[np.ndarray, float]:
    net.eval()
    frames, float_psnr = [], []
    for video, index, keyframe, distance, mask in _batches(clips, 1, shuffle=False):
        out = net(pe(index), keyframe=keyframe, backward_distance=distance)
        float_psnr.append(loss.psnr_fn(out, video, mask).item())
        out8 = (out[0].permute(1, 2, 3, 0) * 255).round().clamp(0, 255).to(torch.uint8)
        frames.append(out8[mask[0]].numpy())
    return np.concatenate(frames), float(np.mean(float_psnr))


def run_official(args, frames: np.ndarray) -> dict:
    model, loss, utils = _import_official(args.official_dir)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002 (as the official train.py seeds)
    random.seed(args.seed)
    pe = utils.PositionalEncoding("1.25_240")
    net = model.DNeRV(
        embed_length=pe.embed_length, fc_hw="9_11", fc_dim=14, expansion=2,
        stride_list=[2, 2, 2, 2], lower_width=32, clip_size=CLIP_SIZE, device="cpu",
        dataset_mean=UVG_MEAN, dataset_std=UVG_STD,
    )  # fmt: skip
    params = sum(p.numel() for p in net.parameters())
    optimizer = torch.optim.AdamW(net.parameters(), betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    schedule = types.SimpleNamespace(lr=5e-4, epochs=args.epochs, warmup=int(0.2 * args.epochs))
    clips = official_clips(frames)
    steps = len(clips) // args.batch
    t0 = time.monotonic()
    for epoch in range(args.epochs):
        net.train()
        for i, (video, index, keyframe, distance, mask) in enumerate(
            _batches(clips, args.batch, shuffle=True)
        ):
            out = net(pe(index), keyframe=keyframe, backward_distance=distance)
            value = loss.loss_fn(out, video, mask, loss_type="Fusion6")
            utils.adjust_lr(optimizer, epoch, i, steps, schedule)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        if not args.quiet and (epoch + 1) % 10 == 0:
            print(f"  official epoch {epoch + 1}: loss {value.item():.4f}", flush=True)
    train_s = time.monotonic() - t0
    decoded, float_psnr = _evaluate(net, clips, pe, loss)
    # train.py's evaluate(quant_model=True): 8 bits, axis 1 for weights, per tensor otherwise
    state = net.state_dict()
    for name, value in state.items():
        large = value.dim() in {2, 4, 5} and "bias" not in name
        state[name] = utils.quantize_per_tensor(value, 8, 1 if large else -1)[1]
    net.load_state_dict(state)
    quantised, float_psnr_q = _evaluate(net, clips, pe, loss)
    return {
        "params": params, "train_s": train_s, "fps": len(frames) * args.epochs / train_s,
        "psnr": psnr_rgb(frames, decoded), "psnr_q": psnr_rgb(frames, quantised),
        "float_psnr": float_psnr, "float_psnr_q": float_psnr_q,
    }  # fmt: skip


def run_ours(args, clip: Path, work: Path, frames: np.ndarray) -> dict:
    report = dnerv_codec.encode(
        [clip], work / "ours.dnerv", preset="official-small", epochs=args.epochs,
        batch_size=args.batch, keyframe_codec="png", keyframe_quality=1, seed=args.seed,
        quiet=args.quiet, force=True,
    )  # fmt: skip
    return {
        "params": report.parameters, "train_s": report.train_seconds,
        "fps": len(frames) * report.epochs / report.train_seconds, "psnr_q": report.psnr,
        "bytes": report.bytes, "bpp": report.bpp,
    }  # fmt: skip


def _print_row(name: str, r: dict) -> None:
    fp32 = f"{r['psnr']:.2f}" if "psnr" in r else "-"
    official = f"{r['float_psnr']:.2f} / {r['float_psnr_q']:.2f}" if "float_psnr" in r else "-"
    print(f"| {name} | {r['params']:,} | {r['train_s']:.0f} | {r['fps']:.2f} | {fp32} | "
          f"{r['psnr_q']:.2f} | {official} |", flush=True)  # fmt: skip


# (name, our preset, official fc_hw, fc_dim, strides, (H, W), clips per training step)
SPEED_CONFIGS = [
    ("small", "official-small", "9_11", 14, [2, 2, 2, 2], (144, 176), 2),
    ("uvg-xs", "uvg-xs", "4_5", 107, [4, 2, 2, 2, 2], (256, 320), 1),
]


def part_speed(args) -> None:
    """Network speed, both codes in one process, timed in alternation on the same inputs.

    A training step = forward, loss (each code's own: the official ``Fusion6`` / our
    ``dnerv_loss``, the same formula), backward, AdamW; inference = one clip under no_grad.
    Median seconds over ``--steps`` timed steps after one warm-up step each.
    """
    model, loss, utils = _import_official(args.official_dir)
    print("| config | size | params | batch | train frames/s official | ours | ratio | "
          "inference frames/s official | ours | ratio |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for config in SPEED_CONFIGS:
        print(_speed_row(args, model, loss, utils, config), flush=True)


def _speed_row(args, model, loss, utils, config) -> str:
    name, _, _, _, _, (h, w), batch = config
    r = speed_pair(model, loss, utils, config, steps=args.steps, seed=args.seed)
    ot, ut, oi, ui = r["official train"], r["ours train"], r["official infer"], r["ours infer"]
    return (
        f"| {name} | {w}x{h} | {r['params']:,} | {batch} | {ot:.2f} | {ut:.2f} | {ut / ot:.2f}x "
        f"| {oi:.2f} | {ui:.2f} | {ui / oi:.2f}x |"
    )


def speed_pair(
    model, loss, utils, config, *, steps: int, seed: int, device: str = "cpu",
    batch: int | None = None, variants: bool = False,
) -> dict:  # fmt: skip
    """Median frames/s of both networks (training step; one-clip inference), timed in
    alternation on the same random inputs. ``variants`` adds ours with bf16 autocast training
    and fp16 inference, and the official network in fp16 inference (CUDA)."""
    import copy

    from dnerv_codec.losses import dnerv_loss
    from dnerv_codec.model import build_model

    name, preset, fc_hw, fc_dim, strides, (h, w), default_batch = config
    batch = batch or default_batch
    dev = torch.device(device)
    pe = utils.PositionalEncoding("1.25_240")
    torch.manual_seed(seed)
    off = model.DNeRV(
        embed_length=pe.embed_length, fc_hw=fc_hw, fc_dim=fc_dim, expansion=2,
        stride_list=strides, lower_width=32, clip_size=CLIP_SIZE, device=device,
        dataset_mean=UVG_MEAN, dataset_std=UVG_STD,
    ).to(dev)  # fmt: skip
    ours = build_model(preset, (h, w)).to(dev)
    params = sum(p.numel() for p in off.parameters())
    assert params == ours.num_parameters(), (params, ours.num_parameters())
    video = torch.rand(batch, 3, CLIP_SIZE, h, w, device=dev)
    key = torch.randn(batch, 3, 2, h, w, device=dev)
    index = torch.rand(batch, CLIP_SIZE, device=dev)
    distance = torch.rand(batch, CLIP_SIZE, device=dev)
    mask = torch.ones(batch, CLIP_SIZE, dtype=torch.bool, device=dev)
    o_opt, u_opt = torch.optim.AdamW(off.parameters()), torch.optim.AdamW(ours.parameters())
    u_key, u_video = key.permute(0, 2, 1, 3, 4).contiguous(), video.transpose(1, 2).contiguous()

    def off_train():
        out = off(pe(index).to(dev), keyframe=key, backward_distance=distance)
        value = loss.loss_fn(out, video, mask, loss_type="Fusion6")
        o_opt.zero_grad()
        value.backward()
        o_opt.step()

    def our_train(amp: bool = False):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            pred = ours(u_key, distance, index)
        value = dnerv_loss(pred, u_video, mask)
        u_opt.zero_grad()
        value.backward()
        u_opt.step()

    @torch.no_grad()
    def off_infer(net=off, dtype=torch.float32):
        net(pe(index[:1]).to(dev, dtype), keyframe=key[:1].to(dtype),
            backward_distance=distance[:1].to(dtype))  # fmt: skip

    @torch.no_grad()
    def our_infer(net=ours, dtype=torch.float32):
        net(u_key[:1].to(dtype), distance[:1].to(dtype), index[:1].to(dtype))

    runs = {
        "official train": off_train, "ours train": our_train,
        "official infer": off_infer, "ours infer": our_infer,
    }  # fmt: skip
    if variants:
        half_ours, half_off = copy.deepcopy(ours).half(), copy.deepcopy(off).half()
        runs["ours train bf16"] = lambda: our_train(amp=True)
        runs["ours infer fp16"] = lambda: our_infer(half_ours, torch.float16)
        runs["official infer fp16"] = lambda: off_infer(half_off, torch.float16)
    sync = torch.cuda.synchronize if dev.type == "cuda" else lambda: None
    times: dict[str, list[float]] = {k: [] for k in runs}
    for k, f in list(runs.items()):
        try:
            f()  # warm-up
        except RuntimeError as exc:  # e.g. a network that does not run in fp16
            print(f"  {name}: {k} failed: {str(exc).splitlines()[0]}", flush=True)
            del runs[k], times[k]
    for _ in range(steps):
        for k, f in runs.items():
            sync()
            t0 = time.perf_counter()
            f()
            sync()
            times[k].append(time.perf_counter() - t0)
    out = {"params": params, "batch": batch}
    for k, v in times.items():
        frames = batch * CLIP_SIZE if "train" in k else CLIP_SIZE
        out[k] = frames / float(np.median(v))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--official-dir", type=Path, required=True, help="checkout of boheumd/D-NeRV")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="both runs (weights init, shuffling)")
    ap.add_argument("--only", choices=["official", "ours"], help="run one side only")
    ap.add_argument(
        "--part",
        choices=["fit", "speed"],
        default="fit",
        help="fit: train both on the clip (PSNR, encoder speed); speed: networks only",
    )
    ap.add_argument("--steps", type=int, default=8, help="speed: timed steps per code")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    now = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    print(f"{now} UTC, python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"{args.threads} threads, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.part == "speed":
        part_speed(args)
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")
        return
    print(f"clip: {CLIP.name} scaled to 176x144; {args.epochs} epochs, batch {args.batch}, "
          f"seed {args.seed}\n")  # fmt: skip
    print("| run | parameters | train s | training frames/s | PSNR fp32 weights | "
          "PSNR 8-bit weights | official float PSNR (fp32 / 8-bit) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        clip = scaled_copy(CLIP, Path(tmp) / "bbb_176x144.mkv", "176x144")
        frames = read_video(clip).frames
        if args.only != "ours":
            _print_row("official code", run_official(args, frames))
        if args.only != "official":
            _print_row("dnerv-codec", run_ours(args, clip, Path(tmp), frames))
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
