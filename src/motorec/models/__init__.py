"""Models: one Recommender contract, one item-representation hook, one registry."""

from motorec.models import (
    bm3,  # noqa: F401  (registers bm3)
    coldstart,  # noqa: F401  (registers the cold-start specialists)
    content,  # noqa: F401  (registers content_profile, itemknn_cbf)
    freedom,  # noqa: F401  (registers freedom)
    lattice,  # noqa: F401  (registers lattice)
    lgmrec,  # noqa: F401  (registers lgmrec)
    lightgcn,  # noqa: F401  (registers bpr, lightgcn)
    motor,  # noqa: F401  (registers item_repr 'motor')
    motorec_model,  # noqa: F401  (registers motorec)
    vbpr,  # noqa: F401  (registers vbpr)
)
from motorec.models.base import MODELS, Recommender, model_class, register_model
from motorec.models.context import ModelContext

__all__ = ["MODELS", "ModelContext", "Recommender", "model_class", "register_model"]
