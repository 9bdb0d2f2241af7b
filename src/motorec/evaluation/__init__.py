"""Evaluation: protocol and metrics; takes scores, never models."""
from motorec.evaluation.metrics import METRICS, rank_metrics, topk_tiebreak
from motorec.evaluation.protocol import EvalResult, Evaluator, write_topk

__all__ = ["Evaluator", "EvalResult", "write_topk", "rank_metrics", "topk_tiebreak", "METRICS"]
