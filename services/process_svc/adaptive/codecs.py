"""RFC 6381 `codecs` strings, as HLS CODECS and DASH @codecs want them,
read from the encoded stream's own configuration (never from what the
profile asked for: x264 may pick another level than expected)."""

from __future__ import annotations

from services.process_svc.adaptive.fmp4 import InitInfo


class UnsupportedCodec(ValueError):
    """A track whose codec this packager cannot name for players."""


def codecs_string(init: InitInfo) -> str:
    """e.g. "avc1.64001f" (H.264 High, level 3.1), "hvc1.1.6.L93.B0" (HEVC Main), "av01.0.08M.08"
    (AV1 Main), "vp09.00.31.08" (VP9), "mp4a.40.2" (AAC-LC) or "opus"."""
    if init.sample_entry in ("avc1", "avc3"):
        return avc_codecs(init.sample_entry, init.avc_config)
    if init.sample_entry in ("hvc1", "hev1"):
        return hevc_codecs(init.sample_entry, init.video_config)
    if init.sample_entry == "av01":
        return av1_codecs(init.video_config)
    if init.sample_entry == "vp09":
        return vp9_codecs(init.video_config)
    if init.sample_entry == "mp4a":
        return aac_codecs(init.audio_config)
    if init.sample_entry == "Opus":
        return "opus"
    raise UnsupportedCodec(f"no codecs string for sample entry {init.sample_entry!r}")


def avc_codecs(sample_entry: str, avc_config: bytes) -> str:
    """From the avcC record: profile_idc, constraint flags, level_idc as six hex digits."""
    if len(avc_config) < 4 or avc_config[0] != 1:
        raise UnsupportedCodec("the H.264 track has no avcC configuration record")
    profile, constraints, level = avc_config[1], avc_config[2], avc_config[3]
    return f"{sample_entry}.{profile:02x}{constraints:02x}{level:02x}"


def aac_codecs(audio_specific_config: bytes) -> str:
    """mp4a.40.<audio object type>: 2 is AAC-LC, 5 HE-AAC, 29 HE-AACv2."""
    if not audio_specific_config:
        raise UnsupportedCodec("the AAC track has no AudioSpecificConfig")
    object_type = audio_specific_config[0] >> 3
    if object_type == 31:  # escape: the real type follows in 6 more bits
        object_type = 32 + (((audio_specific_config[0] & 0x07) << 3) | (audio_specific_config[1] >> 5))
    return f"mp4a.40.{object_type}"


def hevc_codecs(sample_entry: str, hvcc: bytes) -> str:
    """ISO/IEC 14496-15 E.3 from the hvcC record: profile space and idc, the compatibility flags
    bit-reversed in hex, tier and level, then the constraint bytes without trailing zeros."""
    if len(hvcc) < 13 or hvcc[0] != 1:
        raise UnsupportedCodec("the HEVC track has no hvcC configuration record")
    space, tier, profile = hvcc[1] >> 6, (hvcc[1] >> 5) & 1, hvcc[1] & 0x1F
    compatibility = int.from_bytes(hvcc[2:6], "big")
    reversed_flags = int(f"{compatibility:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [sample_entry, f"{'' if space == 0 else 'ABC'[space - 1]}{profile}", f"{reversed_flags:X}",
             f"{'H' if tier else 'L'}{hvcc[12]}", *(f"{byte:X}" for byte in constraints)]
    return ".".join(parts)


def av1_codecs(av1c: bytes) -> str:
    """AV1 ISOBMFF binding: av01.<profile>.<level><tier>.<bit depth> from the av1C record."""
    if len(av1c) < 3 or av1c[0] != 0x81:  # marker bit and version 1
        raise UnsupportedCodec("the AV1 track has no av1C configuration record")
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    high_bitdepth, twelve_bit = bool(av1c[2] & 0x40), bool(av1c[2] & 0x20)
    depth = (12 if twelve_bit else 10) if high_bitdepth else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"


def vp9_codecs(vpcc: bytes) -> str:
    """VP9 ISOBMFF binding: vp09.<profile>.<level>.<bit depth> from the vpcC full box."""
    if len(vpcc) < 7 or vpcc[0] != 1:
        raise UnsupportedCodec("the VP9 track has no vpcC configuration record")
    profile, level, depth = vpcc[4], vpcc[5], vpcc[6] >> 4
    return f"vp09.{profile:02d}.{level:02d}.{depth:02d}"
