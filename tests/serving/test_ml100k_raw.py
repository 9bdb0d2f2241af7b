"""Real data: a cold ml100k film posted from its raw text and poster reproduces the shipped features."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_support import SHARED_DATA

from motorec.serving.app import create_app
from motorec.serving.bundle import load_bundle
from motorec.serving.content import ItemContent
from motorec.serving.export import export_bundle
from motorec.serving.service import RecommenderService
from motorec.training.runner import run_experiment

ML100K = SHARED_DATA / "ml100k-mm"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ML100K / "raw").is_dir(), reason=f"real data not found at {ML100K}"),
]


def test_cold_film_from_raw_content(tmp_path):
    run = tmp_path / "run"
    run_experiment(
        ML100K,
        "bpr",
        run,
        split="ml100k-mm-cold.inter",
        overrides=["seeds=[1]", "train.epochs=1", "train.threads=1", "train.progress=false"],
    )
    export_bundle(run, tmp_path / "bundle", drop_cold_items=True)
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.manifest["dataset"]["cold_items_served"] is False
    service = RecommenderService(bundle, tmp_path / "wal.log", preload_encoders=False)
    client = TestClient(create_app(service))
    item = int(np.loadtxt(ML100K / "ml100k-mm-cold.cold_items.txt", dtype=int)[0])
    movie_id = bundle.catalog.item_ids[item]
    from motorec.features.presets import ml100k

    spec = ml100k(ML100K / "raw")
    row = spec.table.iloc[item]
    assert str(row["movie_id"]) == movie_id
    fields = {"title": row["title"], "genres": list(row["genres"]), "overview": row["overview"]}
    poster = (spec.image_dir / f"{movie_id}.jpg").read_bytes()
    # the service's own encoding of the raw content matches the shipped feature rows
    feats, imputed, text = service.content.encode(ItemContent(fields=fields, image=poster))
    assert imputed == [] and text == bundle.catalog.texts[item]
    for modality in ("text", "image"):
        shipped = np.load(ML100K / f"{modality}_feat.npy", mmap_mode="r")[item]
        cos = feats[modality] @ shipped / np.linalg.norm(feats[modality]) / np.linalg.norm(shipped)
        assert cos > 0.999, (modality, cos)
    r = client.post(
        "/items/form",
        data={"id": movie_id, "title": row["title"], "fields": json.dumps(fields)},
        files={"image": (f"{movie_id}.jpg", poster, "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["imputed_modalities"] == []
    got = client.get(f"/items/{movie_id}").json()
    assert got["new"] and got["text"] == text
    # text only: the image modality is imputed with the catalogue mean
    r = client.post("/items", json={"id": "text-only-1", "text": "A space opera about rebels."})
    assert r.status_code == 201 and r.json()["imputed_modalities"] == ["image"]
    service.close()
