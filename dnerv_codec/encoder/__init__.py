"""The encoder: from videos to one .dnerv file.

:func:`encode` validates the options (:class:`EncodeOptions`), starts a distributed session when
run under torchrun, and runs the stages of :mod:`.pipeline`: prepare (inputs, rate plan,
network, keyframes, training streams), fit (:mod:`.fitting`), land (quantisation, rate
control's landing and fine-tuning), write and verify, report. docs/ARCHITECTURE.md has the
picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dnerv_codec import distributed
from dnerv_codec.decoder import resolve_device
from dnerv_codec.errors import InputError

from .options import DEFAULT_RATE_QUALITY, EncodeOptions, EncodeReport
from .pipeline import run


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
        return run(inputs, output, opts, dist)


__all__ = ["DEFAULT_RATE_QUALITY", "EncodeOptions", "EncodeReport", "encode"]
