"""Splitting encoder output into one self-contained byte string per picture, and back.

Encoders run once over all keyframes (one ffmpeg process), then the elementary stream is cut at
picture boundaries. In the intra codecs every picture is an IRAP/key frame that carries its own
parameter sets, so each piece decodes on its own; in ``hevc-ld`` that holds for the first picture
of each group, and the P pictures after it decode in order after it. Bytes that carry no
information are dropped: access unit delimiters (HEVC/VVC), and the AV1 temporal delimiter OBU
(2 bytes, put back before decoding). NAL units are stored with 3-byte start codes.
"""

from __future__ import annotations

import re
import struct

from dnerv_codec.errors import FormatError

START = b"\x00\x00\x01"
_START_RE = re.compile(b"\x00\x00\x01")

# NAL unit types (HEVC: ITU-T H.265 table 7-1; VVC: ITU-T H.266 table 5).
_HEVC_AUD = 35
_HEVC_PREFIX = set(range(32, 40)) - {_HEVC_AUD}  # VPS SPS PPS EOS EOB FD prefix-SEI
_VVC_AUD = 20
_VVC_PREFIX = {12, 13, 14, 15, 16, 17, 19, 23}  # OPI DCI VPS SPS PPS prefix-APS PH prefix-SEI


def nal_units(stream: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes or trailing zero bytes."""
    starts = [m.end() for m in _START_RE.finditer(stream)]
    ends = [m.start() for m in _START_RE.finditer(stream)][1:] + [len(stream)]
    units = [stream[s:e].rstrip(b"\x00") for s, e in zip(starts, ends, strict=True)]
    return [u for u in units if len(u) >= 2]


def split_annexb(stream: bytes, codec: str) -> list[bytes]:
    """Cut a HEVC or VVC Annex B stream into access units (one per picture), AUDs dropped.

    A new access unit starts, once the current one holds a picture's slice, at the first prefix
    NAL unit (parameter sets, APS, picture header, prefix SEI) or at a slice that opens a new
    picture (HEVC: first_slice_segment_in_pic_flag; VVC: picture_header_in_slice_header_flag).
    """
    units: list[list[bytes]] = []
    current: list[bytes] = []
    has_vcl = False
    for nal in nal_units(stream):
        if codec == "hevc":
            kind = (nal[0] >> 1) & 0x3F
            vcl, aud, prefix = kind < 32, kind == _HEVC_AUD, kind in _HEVC_PREFIX
            opens = vcl and len(nal) > 2 and bool(nal[2] & 0x80)
        else:
            kind = (nal[1] >> 3) & 0x1F
            vcl, aud, prefix = kind < 12, kind == _VVC_AUD, kind in _VVC_PREFIX
            opens = vcl and len(nal) > 2 and bool(nal[2] & 0x80)
        if aud:
            continue
        if has_vcl and (prefix or opens):
            units.append(current)
            current, has_vcl = [], False
        current.append(nal)
        has_vcl = has_vcl or vcl
    if current:
        units.append(current)
    return [b"".join(START + n for n in au) for au in units]


# -- AV1 in IVF ------------------------------------------------------------------------------------
_IVF_HEADER = struct.Struct("<4sHH4sHHIIII")  # 32 bytes
_IVF_FRAME = struct.Struct("<IQ")  # 12 bytes
_AV1_TD = b"\x12\x00"  # temporal delimiter OBU with obu_has_size_field and size 0


def split_ivf(stream: bytes) -> list[bytes]:
    """The frames of an AV1 IVF file, each without its leading temporal delimiter OBU."""
    if len(stream) < _IVF_HEADER.size or stream[:4] != b"DKIF":
        raise FormatError("encoder output is not an IVF stream")
    header_size = struct.unpack_from("<H", stream, 6)[0]
    pos, frames = header_size, []
    while pos < len(stream):
        if pos + _IVF_FRAME.size > len(stream):
            raise FormatError("truncated IVF frame header")
        size, _pts = _IVF_FRAME.unpack_from(stream, pos)
        pos += _IVF_FRAME.size
        frame = stream[pos : pos + size]
        if len(frame) != size:
            raise FormatError("truncated IVF frame")
        pos += size
        frames.append(frame[len(_AV1_TD) :] if frame.startswith(_AV1_TD) else frame)
    return frames


def join_ivf(frames: list[bytes], width: int, height: int) -> bytes:
    """An IVF stream of AV1 frames, a temporal delimiter put back in front of each."""
    out = [_IVF_HEADER.pack(b"DKIF", 0, 32, b"AV01", width, height, 25, 1, len(frames), 0)]
    for i, frame in enumerate(frames):
        payload = _AV1_TD + frame
        out.append(_IVF_FRAME.pack(len(payload), i))
        out.append(payload)
    return b"".join(out)
