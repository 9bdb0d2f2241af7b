"""Evaluation: protocol and metrics; takes scores, never models."""
from motorec.evaluation.metrics import METRICS, rank_metrics, topk_tiebreak
from motorec.evaluation.protocol import DotScorer, EvalResult, Evaluator, write_topk

__all__ = ["Evaluator", "DotScorer", "EvalResult", "write_topk", "rank_metrics", "topk_tiebreak", "METRICS"]
