"""Stills made in the transcode's decode pass: a poster (JPEG and WebP),
thumbnails at even intervals, and a storyboard (sprite sheet + WebVTT).

    plan = plan_poster(PosterSpec(), encode_plan.renditions, source_info)   # plan/stills.py
    writer = StillsWriter(plan, out_dir)         # files go to out_dir/images/
    execute(encode_plan, source, out_dir, stills=[writer])
    writer.result                                # ProducedStills

scoring.py says how a poster frame is judged; poster.py how it is picked
with bounded memory; storyboard.py the sprite and VTT geometry.
"""

from services.process_svc.execute.stills.writer import IMAGES_DIR, ProducedStills, StillFile, StillsWriter

__all__ = ["IMAGES_DIR", "ProducedStills", "StillFile", "StillsWriter"]
