"""The cores shared out between the rungs' encoders, which all run at once."""

from __future__ import annotations

from fractions import Fraction

from services.process_svc.execute.thread_budget import encoder_threads
from services.process_svc.plan import SourceInfo, plan_encode
from services.process_svc.profiles import ProfileCatalog

LADDER = plan_encode(ProfileCatalog.load().get("default"),
                     SourceInfo(width=1920, height=1080, fps=Fraction(30), duration_seconds=10.0)).renditions


def test_the_largest_rung_gets_the_threads_its_share_of_the_pixels_needs() -> None:
    # 1080p is 57% of the ladder's pixels: on 2 cores it needs more than one; the others one each.
    assert encoder_threads(LADDER, 2) == {"1080p": 2, "720p": 1, "480p": 1, "360p": 1}
    assert encoder_threads(LADDER, 8) == {"1080p": 5, "720p": 3, "480p": 1, "360p": 1}


def test_every_rung_gets_at_least_one_and_a_lone_rung_every_core() -> None:
    assert encoder_threads(LADDER, 1) == {"1080p": 1, "720p": 1, "480p": 1, "360p": 1}
    assert encoder_threads(LADDER[-1:], 4) == {"360p": 4}
