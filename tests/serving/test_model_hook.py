"""The "model" path: a model implementing the serving protocol embeds and tokenises new items itself."""

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

from motorec.models.base import MODELS, Recommender, bpr_loss, register_model
from motorec.serving.app import create_app
from motorec.serving.bundle import load_bundle
from motorec.serving.export import export_bundle
from motorec.serving.protocol import ContentToTokens, ContentToVector
from motorec.serving.service import RecommenderService
from motorec.tokenizers.base import TokenSlot
from motorec.training.runner import run_experiment

NAME = "_serving_test_content"


class ContentMF(Recommender):
    """Item vector = linear map of its features; its token = nearest of 8 fixed code vectors."""

    content_path = True
    min_modalities = 1

    def __init__(self, ctx, params):
        super().__init__(ctx, params)
        self.mods = sorted(ctx.modalities)
        width = sum(ctx.features(m).shape[1] for m in self.mods)
        self.user_emb = nn.Parameter(0.1 * torch.randn(self.n_users, 16))
        self.proj = nn.Linear(width, 16)
        self.register_buffer("codebook", torch.randn(8, width, generator=torch.Generator().manual_seed(0)))

    def _x(self, features):
        return torch.cat([features[m] for m in self.mods], 1)

    def item_vector_from_content(self, features):
        return self.proj(self._x(features))

    def item_tokens_from_content(self, features):
        return torch.cdist(self._x(features), self.codebook).argmin(1, keepdim=True)

    def token_slots(self):
        return [TokenSlot("shared", 0, 8)]

    def embeddings(self):
        return self.user_emb, self.item_vector_from_content({m: self.ctx.features(m) for m in self.mods})

    def calculate_loss(self, users, pos, neg):
        u, i = self.embeddings()
        loss = bpr_loss((u[users] * i[pos]).sum(-1), (u[users] * i[neg]).sum(-1))
        return {"loss": loss}

    def full_sort_predict(self, users):
        u, i = self.embeddings()
        return u[users] @ i.T


@pytest.fixture(scope="module")
def hook_bundle(tmp_path_factory):
    if NAME not in MODELS:
        register_model(NAME)(ContentMF)
    root = tmp_path_factory.mktemp("hook")
    run_experiment(
        "synthetic-cold",
        NAME,
        root / "run",
        overrides=["seeds=[3]", "train.epochs=1", "train.threads=1", "train.progress=false"],
    )
    export_bundle(root / "run", root / "bundle")
    return load_bundle(root / "bundle")


def test_export_uses_the_model_hook(hook_bundle):
    assert isinstance(ContentMF.__new__(ContentMF), ContentToVector) and isinstance(
        ContentMF.__new__(ContentMF), ContentToTokens
    )
    m = hook_bundle.manifest
    assert m["item_vectors"]["method"] == "model"
    assert m["item_vectors"]["cosine_hook_vs_embeddings"]["warm_mean"] > 0.999
    assert m["tokens"] == {
        "source": "model",
        "slots": [{"modality": "shared", "level": 0, "codebook_size": 8, "kind": "code"}],
    }
    assert "model/weights.safetensors" in m["files"] and hook_bundle.content_map is None


def test_service_embeds_new_items_through_the_rebuilt_model(hook_bundle, tmp_path):
    service = RecommenderService(hook_bundle, tmp_path / "wal.log", preload_encoders=False)
    client = TestClient(create_app(service))
    stored = service.embedder.model
    twin = 5  # a new item with the exact content of catalogue item 5 gets item 5's vector and token
    feats = {m: stored.ctx.features(m)[twin].tolist() for m in stored.mods}
    r = client.post("/items", json={"id": "twin-5", "features": feats})
    assert r.status_code == 201, r.text
    assert r.json()["item_vectors"] == "model"
    assert r.json()["tokens"][0]["code"] == int(hook_bundle.item_tokens[twin, 0])
    new = service.item_index["twin-5"]
    assert np.allclose(service.vectors[new], hook_bundle.item_vectors[twin], atol=1e-5)
    service.close()
