"""What the encoder writes: the metadata of a file and its sections.

:class:`FileDescription` is everything the metadata says except the weights' quantisation, which
rate control chooses last; :class:`FileAssembly` adds the keyframe payload, so that the sections
of a file, and its exact size, follow from a weights section alone (rate control measures
candidates with :meth:`FileAssembly.size`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bitstream import ids
from bitstream.container import ContainerWriter
from bitstream.meta import dict_meta
from dnerv_codec._version import __version__

WeightsSection = tuple[int, bytes]  # (section type id, payload): quant.pack_records
_METADATA = ids.id_of(ids.SECTION_TYPES, "metadata-dict")
_KEYFRAMES = ids.id_of(ids.SECTION_TYPES, "keyframes-compact")


def video_entries(videos) -> tuple[dict[str, Any], ...]:
    """The ``videos`` list of the metadata: name, frames, size and frame rate of each."""
    return tuple(
        {
            "name": v.name,
            "frames": v.num_frames,
            "width": v.width,
            "height": v.height,
            "fps_num": v.fps.numerator,
            "fps_den": v.fps.denominator,
        }
        for v in videos
    )


def keyframe_entry(codec) -> dict[str, Any]:
    """The ``keyframe`` dict of the metadata for a codec at its quality."""
    return {
        "codec": codec.codec_id,
        "name": codec.name,
        "quality": codec.quality,
        "weights_digest": codec.weights_digest,
    }


def keyframe_only_sections(videos, codec, keyframes: bytes) -> list[tuple[int, bytes]]:
    """The sections of a keyframe-only file (no network: every frame is a keyframe, shown as
    decoded; docs/FORMAT.md, "Keyframe-only files"). ``keyframes``: the packed section."""
    meta = {
        "encoder": f"dnerv-codec {__version__}",
        "videos": [dict(v) for v in video_entries(videos)],
        "clip_length": 1,
        "keyframe": keyframe_entry(codec),
    }
    return sorted([(_METADATA, dict_meta(meta)), (_KEYFRAMES, keyframes)])


def container_size(sections: list[tuple[int, bytes]]) -> int:
    """The exact size in bytes of a file of these sections."""
    writer = ContainerWriter()
    for type_id, payload in sections:
        writer.add(type_id, payload)
    return len(writer.finish())


@dataclass(frozen=True)
class FileDescription:
    """The metadata of a file, less the quantisation (docs/FORMAT.md, "Metadata")."""

    videos: tuple[dict[str, Any], ...]  # name, frames, width, height, fps_num, fps_den
    clip_length: int
    geometry: dict[str, Any]  # geometry.Geometry.to_meta()
    model_config: dict[str, Any]  # DNeRV.config
    mean: tuple[float, ...]
    std: tuple[float, ...]
    keyframe: dict[str, Any]  # codec id, name, quality, weights digest
    quant_scheme: str
    preset: str | None

    @classmethod
    def of(
        cls, videos, model, geometry, norm, codec, quant_scheme: str, preset, structures=None
    ) -> FileDescription:
        """``structures``: where each video's keyframes are; a video whose keyframes do not
        follow the every-T-frames rule stores their gaps (``videos[i].keyframes``)."""
        mean, std = norm
        entries = video_entries(videos)
        for entry, structure in zip(entries, structures or [], strict=False):
            if not structure.is_uniform:
                entry["keyframes"] = structure.gaps()
        return cls(
            videos=entries,
            clip_length=model.T,
            geometry=geometry.to_meta(),
            model_config=model.config,
            mean=tuple(mean),
            std=tuple(std),
            keyframe=keyframe_entry(codec),
            quant_scheme=quant_scheme,
            preset=preset,
        )

    def meta(self, bits: int, prune: float) -> dict[str, Any]:
        """The metadata dictionary of a file whose weights are at ``bits``, ``prune`` pruned."""
        return {
            "encoder": f"dnerv-codec {__version__}",
            "videos": [dict(v) for v in self.videos],
            "clip_length": self.clip_length,
            "geometry": self.geometry,
            "model": {"arch": ids.id_of(ids.ARCHITECTURES, "dnerv"), "config": self.model_config},
            "norm": {"mean": list(self.mean), "std": list(self.std)},
            "keyframe": dict(self.keyframe),
            "quant": {
                "bits": bits,
                "scheme": self.quant_scheme,
                "prune": prune,
                "preset": self.preset,
            },
        }


@dataclass(frozen=True)
class FileAssembly:
    """A file but for its weights: the description and the keyframe section's payload."""

    description: FileDescription
    keyframes: bytes  # bitstream.keyframes.pack_keyframes_compact

    def sections(self, weights: WeightsSection, bits: int, prune: float) -> list[WeightsSection]:
        """The file's sections, types ascending (as a file orders them)."""
        sections = [
            (_METADATA, dict_meta(self.description.meta(bits, prune))),
            (_KEYFRAMES, self.keyframes),
            weights,
        ]
        return sorted(sections, key=lambda section: section[0])

    def size(self, weights: WeightsSection, bits: int, prune: float) -> int:
        """The exact size in bytes of the file with this weights section."""
        return container_size(self.sections(weights, bits, prune))
