"""What a per-title job decided, as the job reports it (proto Compression):
the analysis, every rung's decision and what deciding cost against the encode."""

from __future__ import annotations

from services.process_svc.execute.per_title import PerTitleDecision
from services.process_svc.plan.per_title import RungDecision
from vtc.v1 import common_pb2


def compression_message(decided: PerTitleDecision, metric: str, window_seconds: float,
                        encode_seconds: float) -> common_pb2.Compression:
    deciding = decided.analysis_seconds + decided.probe_seconds
    analysis = decided.analysis
    return common_pb2.Compression(
        metric=metric, spatial_information=round(analysis.spatial, 2),
        temporal_information=round(analysis.temporal, 2), scene_changes=analysis.scene_changes,
        windows_analysed=len(analysis.windows),
        probe_window_starts=[w.start_seconds for w in decided.windows], probe_window_seconds=window_seconds,
        rungs=[rung_decision_message(d) for d in decided.decisions],
        cost=common_pb2.DecisionCost(
            analysis_seconds=round(decided.analysis_seconds, 3), probe_seconds=round(decided.probe_seconds, 3),
            probe_encodes=decided.probe_encodes, encode_seconds=round(encode_seconds, 3),
            share=round(deciding / (deciding + encode_seconds), 4) if deciding + encode_seconds > 0 else 0.0))


def rung_decision_message(decision: RungDecision) -> common_pb2.RungDecision:
    return common_pb2.RungDecision(
        name=decision.name, crf=decision.crf, max_bitrate=decision.max_bitrate, target_db=decision.target_db,
        predicted_db=decision.predicted_db, predicted_bitrate=decision.predicted_bitrate,
        probed_crfs=list(decision.probed_crfs), dropped=decision.dropped, reason=decision.reason)
