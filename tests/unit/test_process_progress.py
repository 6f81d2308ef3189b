"""Progress figures a watcher sees: percent, fps, speed, ETA."""

from __future__ import annotations

from services.process_svc.execute.progress import ProgressMeter
from services.process_svc.failures import clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reports_are_throttled_and_figures_add_up() -> None:
    time = FakeClock()
    meter = ProgressMeter(total_frames=60, duration_seconds=2.0, interval_seconds=0.5, clock=time)
    reports = []
    for frame in range(60):
        time.now += 1 / 32  # 32 frames per wall-clock second (exact in binary floating point)
        report = meter.frame_decoded(frame / 30)
        if report:
            reports.append(report)
    # 60 frames over 1.875 s of wall time: the first frame reports at once, then one report per 0.5 s.
    assert [r.frames for r in reports] == [1, 17, 33, 49]
    second = reports[1]
    assert second.total_frames == 60
    assert second.percent == round(17 / 60 * 100, 2)
    assert second.fps == 32.0
    assert second.speed == round((16 / 30) / (17 / 32), 3)
    assert second.eta_seconds == round(43 / 32, 1)
    final = meter.finished()
    assert final.percent == 100.0 and final.eta_seconds == 0.0 and final.frames == 60


def test_percent_never_decreases_and_holds_below_100_until_done() -> None:
    time = FakeClock()
    meter = ProgressMeter(total_frames=10, duration_seconds=0.0, interval_seconds=0.0, clock=time)
    percents = []
    for frame in range(15):  # the estimate undercounted the frames
        time.now += 0.1
        percents.append(meter.frame_decoded(frame / 10).percent)  # type: ignore[union-attr]
    assert percents == sorted(percents)
    assert max(percents) == 99.9
    assert meter.finished().percent == 100.0


def test_percent_falls_back_to_media_time_without_a_frame_estimate() -> None:
    time = FakeClock()
    meter = ProgressMeter(total_frames=0, duration_seconds=4.0, interval_seconds=0.0, clock=time)
    time.now += 1.0
    report = meter.frame_decoded(1.0)
    assert report is not None
    assert report.percent == 25.0 and report.speed == 1.0 and report.eta_seconds == 3.0


def test_clock_reads_like_a_player() -> None:
    assert clock(1.23) == "00:01.2"
    assert clock(75.0) == "01:15.0"
    assert clock(3725.5) == "1:02:05.5"
