"""Content features of a new item -> its vector and tokens, the way its bundle says.

"model": the trained model is rebuilt from BUNDLE/model/ (weights + the train-only graph and
features, so the training data is not needed) and asked through `item_vector_from_content`;
"ridge": the bundle's content map. Tokens come from the model or from the bundle's tokenizer.
"""

from __future__ import annotations

import numpy as np
import torch
from safetensors.numpy import load_file
from safetensors.torch import load_model

from motorec.config import saved_run_config
from motorec.data.dataset import Dataset
from motorec.errors import MotorecError
from motorec.models.factory import build_model
from motorec.serving.bundle import Bundle
from motorec.serving.export import MODEL_DIR, TOKENIZER_DIR, concat_features
from motorec.serving.protocol import ContentToTokens, ContentToVector
from motorec.tokenizers.base import load_tokenizer


def rebuild_model(bundle: Bundle) -> torch.nn.Module:
    """The exported model on CPU, built over a train-only dataset rebuilt from the bundle."""
    m = bundle.manifest
    stored = load_file(str(bundle.path / MODEL_DIR / "features.safetensors"))
    cold = stored.pop("cold_items")
    indptr = bundle.seen_indptr
    ds = Dataset(
        name=m["dataset"]["name"],
        n_users=m["n_users"],
        n_items=m["n_items"],
        users=np.repeat(np.arange(m["n_users"]), np.diff(indptr)),
        items=bundle.seen_indices,
        labels=np.zeros(len(bundle.seen_indices), dtype=np.int8),
        modalities=stored,
        cold_items=cold if m["dataset"]["cold_items"] is not None else None,
        source={"dir": str(bundle.path)},
    )
    cfg = saved_run_config(dict(m["model"]["config"], device="cpu"), f"bundle {bundle.path}")
    model = build_model(ds, cfg, torch.device("cpu"), None)  # no cache: the bundle may be read-only
    missing, unexpected = load_model(model, str(bundle.path / MODEL_DIR / "weights.safetensors"), strict=False)
    if missing or unexpected:
        raise MotorecError(
            f"bundle {bundle.path}: model weights do not fit model '{m['model']['name']}' of this "
            f"motorec (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})."
        )
    return model.eval()


class ItemEmbedder:
    """One new item's features (a vector per modality) -> (item vector, tokens or None)."""

    def __init__(self, bundle: Bundle) -> None:
        self.method = bundle.manifest["item_vectors"]["method"]
        self.order = sorted(bundle.modalities)
        self.content_map = bundle.content_map
        tokens = bundle.manifest.get("tokens") or {}
        self.model = rebuild_model(bundle) if self.method == "model" or tokens.get("source") == "model" else None
        self.tokenizer = load_tokenizer(bundle.path / TOKENIZER_DIR) if tokens.get("source") == "tokenizer" else None
        self.has_tokens = bool(tokens)

    def _vector_hook(self) -> ContentToVector:
        """The rebuilt model, which embeds new items itself (`serving.protocol`)."""
        if not isinstance(self.model, ContentToVector):
            raise MotorecError("this bundle's model does not embed new items (item_vector_from_content).")
        return self.model

    def _token_hook(self) -> ContentToTokens:
        """The rebuilt model, which tokenises new items itself (`serving.protocol`)."""
        if not isinstance(self.model, ContentToTokens):
            raise MotorecError("this bundle's model does not tokenise new items (item_tokens_from_content).")
        return self.model

    def embed(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        batch = {m: np.asarray(features[m], dtype=np.float32)[None, :] for m in self.order}
        if self.method == "none":
            raise MotorecError("this bundle's model has no content features, so new items cannot be embedded.")
        with torch.no_grad():
            if self.method == "model":
                from_model = self._vector_hook().item_vector_from_content(
                    {m: torch.from_numpy(f) for m, f in batch.items()}
                )
                vector = from_model[0].float().numpy()
            elif self.content_map is not None:
                vector = self.content_map(concat_features(batch, self.order))[0]
            else:
                raise MotorecError(f"item vectors by '{self.method}': this bundle has no content map.")
            tokens = None
            if self.tokenizer is not None:
                tokens = np.asarray(self.tokenizer.encode(batch), dtype=np.int64)[0]
            elif self.has_tokens:
                codes = self._token_hook().item_tokens_from_content({m: torch.from_numpy(f) for m, f in batch.items()})
                tokens = codes[0].cpu().numpy().astype(np.int64)
        if not np.isfinite(vector).all():
            raise MotorecError("the item's vector came out non-finite; check the features' scale.")
        return vector.astype(np.float32), tokens
