"""Models: one Recommender contract, one item-representation hook, one registry."""
from motorec.models import lightgcn  # noqa: F401  (registers bpr, lightgcn)
from motorec.models.base import MODELS, Recommender, model_class, register_model
from motorec.models.context import ModelContext

__all__ = ["MODELS", "Recommender", "ModelContext", "model_class", "register_model"]
