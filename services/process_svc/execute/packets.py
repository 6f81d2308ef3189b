"""Encoded packets handed on to more than one consumer."""

from __future__ import annotations

import av


def copy_packet(packet: av.Packet) -> av.Packet:
    """A packet of its own: same payload and timing (muxing one rescales its timestamps and binds its stream).
    H.264 and AAC packets from our encoders carry no side data worth keeping."""
    clone = av.Packet(bytes(packet))
    clone.pts, clone.dts, clone.duration = packet.pts, packet.dts, packet.duration
    clone.time_base = packet.time_base
    clone.is_keyframe = packet.is_keyframe
    return clone
