"""Evaluation: protocol and metrics; takes scores, never models."""

from motorec.evaluation.metrics import METRICS, rank_metrics, topk_tiebreak
from motorec.evaluation.protocol import DotScorer, EvalResult, Evaluator, write_topk

__all__ = ["METRICS", "DotScorer", "EvalResult", "Evaluator", "rank_metrics", "topk_tiebreak", "write_topk"]
