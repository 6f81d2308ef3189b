"""RFC 6381 `codecs` strings, as HLS CODECS and DASH @codecs want them,
read from the encoded stream's own configuration (never from what the
profile asked for: x264 may pick another level than expected)."""

from __future__ import annotations

from services.process_svc.adaptive.fmp4 import InitInfo


class UnsupportedCodec(ValueError):
    """A track whose codec this packager cannot name for players."""


def codecs_string(init: InitInfo) -> str:
    """e.g. "avc1.64001f" (H.264 High, level 3.1) or "mp4a.40.2" (AAC-LC)."""
    if init.sample_entry in ("avc1", "avc3"):
        return avc_codecs(init.sample_entry, init.avc_config)
    if init.sample_entry == "mp4a":
        return aac_codecs(init.audio_config)
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
