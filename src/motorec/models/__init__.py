"""Models: one Recommender contract, one item-representation hook, one registry."""
from motorec.models import lightgcn  # noqa: F401  (registers bpr, lightgcn)
from motorec.models import content  # noqa: F401  (registers content_profile, itemknn_cbf)
from motorec.models import vbpr  # noqa: F401  (registers vbpr)
from motorec.models import freedom  # noqa: F401  (registers freedom)
from motorec.models import lattice  # noqa: F401  (registers lattice)
from motorec.models import bm3  # noqa: F401  (registers bm3)
from motorec.models import lgmrec  # noqa: F401  (registers lgmrec)
from motorec.models import motor  # noqa: F401  (registers item_repr 'motor')
from motorec.models import motorec_model  # noqa: F401  (registers motorec)
from motorec.models import coldstart  # noqa: F401  (registers the cold-start specialists)
from motorec.models.base import MODELS, Recommender, model_class, register_model
from motorec.models.context import ModelContext

__all__ = ["MODELS", "Recommender", "ModelContext", "model_class", "register_model"]
