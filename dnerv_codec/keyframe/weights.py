"""Finding, loading and fingerprinting the weights of the learned (CompressAI) keyframe codecs.

Where weights come from, first match wins:

1. ``weights="random:SEED"``: a randomly initialised model (tests and timing only; never implicit).
2. ``weights=PATH``: a state dict saved with ``torch.save`` (loaded with ``weights_only=True``).
3. The torch hub cache: ``$TORCH_HOME/hub/checkpoints/<CompressAI file name>``.
4. CompressAI's own download, tried only when its server answers within a few seconds (and
   ``DNERV_OFFLINE`` is unset); otherwise a :class:`WeightsError` names the file and its place.

The digest is sha256 over every tensor of the state dict in name order (name, dtype, shape, bytes),
*including* the integer CDF tables the entropy coder uses, so two models that would code
differently never share a digest.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from dnerv_codec.errors import WeightsError

CONNECT_TIMEOUT_S = 3.0
RANDOM_PREFIX = "random:"


def _zoo():
    """``compressai.zoo.image``, imported without the FutureWarning that its dependency
    torch_geometric raises about ``torch.jit.script`` (noise for our users, not theirs to fix)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script")
        import compressai.zoo.image as zoo
        import compressai.zoo.pretrained  # noqa: F401  (imported here for the same reason)
    return zoo


def zoo_url(name: str, quality: int) -> str:
    """CompressAI's download URL of the mse-trained ``name`` at ``quality``."""
    return _zoo().model_urls[name]["mse"][quality]


def hub_cache_path(name: str, quality: int) -> Path:
    """Where torch hub (and so CompressAI) keeps the pretrained file of ``name`` at ``quality``."""
    filename = os.path.basename(urlparse(zoo_url(name, quality)).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def build_model(name: str, quality: int, weights: str | Path | None) -> torch.nn.Module:
    """The CompressAI model ``name`` at ``quality`` in eval mode, CDF tables ready.

    Raises:
        WeightsError: the weights cannot be found, read, or do not fit the model.
    """
    zoo = _zoo()
    cfgs, arch = zoo.cfgs, zoo.model_architectures[name]
    if isinstance(weights, str) and weights.startswith(RANDOM_PREFIX):
        seed = _parse_seed(weights)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = arch(*cfgs[name][quality])
    else:
        state = _find_state_dict(name, quality, weights)
        try:
            model = arch.from_state_dict(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"weights do not fit {name} quality {quality}: {first}") from None
    model = model.eval().float()
    # Keep integer CDF tables shipped with a checkpoint; compute them only where absent.
    model.update(force=False)
    return model


def digest(model: torch.nn.Module) -> str:
    """sha256 hex digest of every tensor of ``model.state_dict()`` (CDF tables included)."""
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        arr = tensor.detach().cpu().contiguous().numpy()
        h.update(key.encode())
        h.update(str(arr.dtype.newbyteorder("<")).encode())
        h.update(np.asarray(arr.shape, dtype="<i8").tobytes())
        h.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def _parse_seed(weights: str) -> int:
    try:
        return int(weights[len(RANDOM_PREFIX) :])
    except ValueError:
        raise WeightsError(
            f"weights {weights!r}: expected random:SEED with an integer SEED"
        ) from None


def _find_state_dict(name: str, quality: int, weights: str | Path | None) -> dict:
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"keyframe weights file {path} does not exist")
        return _load_file(path)
    cached = hub_cache_path(name, quality)
    if cached.is_file():
        return _load_file(cached)
    url = zoo_url(name, quality)
    if not os.environ.get("DNERV_OFFLINE") and _reachable(url):
        try:
            state = torch.hub.load_state_dict_from_url(
                url, progress=False, check_hash=True, map_location="cpu", weights_only=True
            )
        except Exception as exc:  # any download failure becomes one clear line
            raise WeightsError(f"downloading {url} failed: {exc}") from None
        return _normalise(state, url)
    raise WeightsError(
        f"no weights for keyframe codec {name} quality {quality}: download {url} and put it at "
        f"{cached} (or set TORCH_HOME), or pass --keyframe-weights PATH"
    )


def _reachable(url: str) -> bool:
    """True if ``url``'s host accepts a TCP connection within CONNECT_TIMEOUT_S, DNS included.

    The probe runs in a daemon thread because the socket timeout does not bound name resolution.
    """
    host = urlparse(url).hostname or ""
    answer: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT_S):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    return bool(answer and answer[0])


def _load_file(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable or unsafe files give one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"cannot read keyframe weights {path}: {first}") from None
    return _normalise(state, str(path))


def _normalise(state: object, where: str) -> dict:
    from compressai.zoo.pretrained import load_pretrained

    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{where} is not a state dict of tensors")
    return load_pretrained(state)
