"""The HTTP API end to end in-process: ingest -> recommendable, fold-in, validation, replay."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_support import features_for_vector

from motorec.serving.app import create_app
from motorec.serving.service import RecommenderService


@pytest.fixture()
def wal_path(tmp_path):
    return tmp_path / "wal.log"


def client_for(bundle, wal_path):
    service = RecommenderService(bundle, wal_path, preload_encoders=False)
    return TestClient(create_app(service)), service


def test_new_item_is_recommendable_by_the_next_request(bundle, wal_path):
    client, service = client_for(bundle, wal_path)
    user = bundle.catalog.user_ids[0]
    before = client.get(f"/recommend/{user}?k=5").json()
    assert len(before["items"]) == 5 and not any(i["new"] for i in before["items"])
    # an item whose vector points along the user's vector, far out: it must rank first
    target = (
        50
        * bundle.user_vectors[0]
        / np.linalg.norm(bundle.user_vectors[0])
        * np.linalg.norm(bundle.item_vectors, axis=1).max()
    )
    r = client.post("/items", json={"id": "fresh-1", "title": "Fresh", "features": features_for_vector(bundle, target)})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["item_vectors"] == "ridge" and created["imputed_modalities"] == []
    assert [t["modality"] for t in created["tokens"]] == [s["modality"] for s in bundle.manifest["tokens"]["slots"]]
    after = client.get(f"/recommend/{user}?k=5").json()
    assert after["items"][0] == {**after["items"][0], "id": "fresh-1", "new": True}
    assert after["index_version"] >= created["index_version"]
    item = client.get("/items/fresh-1").json()
    assert item["new"] and item["title"] == "Fresh" and item["train_interactions"] == 0
    code = created["tokens"][0]
    tok = client.get(f"/tokens/{code['modality']}/{code['level']}/{code['code']}").json()
    assert "fresh-1" in [i["id"] for i in tok["items"]] and tok["n_items"] >= 1
    service.close()


def test_new_user_fold_in_and_exclude_seen(bundle, wal_path):
    client, service = client_for(bundle, wal_path)
    items = [bundle.catalog.item_ids[i] for i in np.flatnonzero(bundle.item_degree > 0)[:3]]
    r = client.post("/users/newbie/interactions", json={"items": items})
    assert r.status_code == 200 and r.json() == {"user_id": "newbie", "new_user": True, "online_interactions": 3}
    recs = client.get("/recommend/newbie?k=50").json()["items"]
    assert not set(items) & {i["id"] for i in recs}
    # folded in from the mean user towards its items: each of them now scores higher
    u, idx = service.user_index["newbie"], [service.item_index[i] for i in items]
    gain = service.vectors[idx] @ (service.user_vectors[u] - service.user_prior_new)
    assert (gain > 0).all()
    old = bundle.catalog.user_ids[1]
    before = client.get(f"/recommend/{old}?k=10").json()["items"]
    client.post(f"/users/{old}/interactions", json={"items": [items[0]]})
    assert items[0] not in {i["id"] for i in client.get(f"/recommend/{old}?k=10").json()["items"]}
    assert client.get(f"/recommend/{old}?k=10").json()["items"] != before
    service.close()


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"id": "x1", "features": {"text": [0.1, 0.2]}}, 422, "must have"),
        ({"id": "x1", "features": {"sound": [0.1]}}, 422, "unknown modality"),
        ({"id": "x1"}, 422, "no content"),
        ({"id": "x1", "text": "a film"}, 422, "precomputed features instead"),  # synthetic dims: no encoder
        ({"id": "bad id!", "features": {}}, 422, "pattern"),
        ({"id": "x1", "extra": 1}, 422, "extra"),
        ({"id": "x1", "image_base64": "@@@"}, 422, "base64"),
    ],
)
def test_ingest_validation(bundle, wal_path, body, status, message):
    client, service = client_for(bundle, wal_path)
    r = client.post("/items", json=body)
    assert r.status_code == status and message in r.text
    service.close()


def test_nan_duplicates_unknown_ids_and_sizes(bundle, wal_path):
    client, service = client_for(bundle, wal_path)
    dims = bundle.modalities
    feats = {m: [0.0] * d for m, d in dims.items()}
    nan_body = json.dumps({"id": "n1", "features": {m: [float("nan")] * d for m, d in dims.items()}})
    assert client.post("/items", content=nan_body, headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/items", json={"id": "d1", "features": feats}).status_code == 201
    assert client.post("/items", json={"id": "d1", "features": feats}).status_code == 409
    existing = bundle.catalog.item_ids[int(np.flatnonzero(bundle.served)[0])]
    assert client.post("/items", json={"id": existing, "features": feats}).status_code == 409
    assert client.get("/recommend/nobody").status_code == 404
    assert client.get("/items/nothing").status_code == 404
    assert client.post("/users/u1/interactions", json={"items": ["nothing"]}).status_code == 404
    assert client.post("/users/u1/interactions", json={"items": []}).status_code == 422
    assert client.get(f"/recommend/{bundle.catalog.user_ids[0]}?k=0").status_code == 422
    big = b"{" + b" " * (9 * 1024 * 1024) + b"}"
    assert client.post("/items", content=big, headers={"content-type": "application/json"}).status_code == 413
    slot = bundle.manifest["tokens"]["slots"][0]
    assert client.get(f"/tokens/{slot['modality']}/{slot['level']}/{slot['codebook_size']}").status_code == 404
    assert client.get("/tokens/nope/0/0").status_code == 404
    metrics = client.get("/metrics").text
    assert 'route="/items",status="409"' in metrics and "motorec_items_indexed" in metrics
    service.close()


def test_restart_replays_the_log_to_the_same_state(bundle, wal_path):
    client, service = client_for(bundle, wal_path)
    feats = {m: np.linspace(-1, 1, d).tolist() for m, d in bundle.modalities.items()}
    client.post("/items", json={"id": "keep-1", "features": feats})
    client.post("/users/walker/interactions", json={"items": ["keep-1", bundle.catalog.item_ids[0]]})
    recs = client.get("/recommend/walker?k=20&exclude_seen=false").json()["items"]
    service.close()
    client2, service2 = client_for(bundle, wal_path)
    assert service2.replayed == 2
    assert client2.get("/items/keep-1").status_code == 200
    assert client2.get("/recommend/walker?k=20&exclude_seen=false").json()["items"] == recs
    assert client2.post("/items", json={"id": "keep-1", "features": feats}).status_code == 409
    service2.close()


def test_compaction_keeps_what_is_served(bundle, wal_path):
    client, service = client_for(bundle, wal_path)
    rng = np.random.default_rng(0)
    for i in range(4):
        feats = {m: rng.normal(size=d).tolist() for m, d in bundle.modalities.items()}
        assert client.post("/items", json={"id": f"cmp-{i}", "features": feats}).status_code == 201
    base = [bundle.catalog.item_ids[i] for i in np.flatnonzero(bundle.served)[:6]]
    users = ["cmp-user-a", "cmp-user-b", bundle.catalog.user_ids[3]]
    for step in range(12):  # several records per user, with repeats: merged by compaction
        items = [f"cmp-{step % 4}", base[step % 6]]
        assert client.post(f"/users/{users[step % 3]}/interactions", json={"items": items}).status_code == 200
    served = {u: (client.get(f"/recommend/{u}?k=30").json()["items"], client.get(f"/users/{u}").json()) for u in users}
    records_before = service.wal.records
    info = client.post("/admin/compact").json()
    assert info["records_before"] == records_before == 16 and info["records_after"] == 4 + 3
    assert {
        u: (client.get(f"/recommend/{u}?k=30").json()["items"], client.get(f"/users/{u}").json()) for u in users
    } == served
    service.close()
    client2, service2 = client_for(bundle, wal_path)
    assert service2.replayed == 7
    assert {
        u: (client2.get(f"/recommend/{u}?k=30").json()["items"], client2.get(f"/users/{u}").json()) for u in users
    } == served
    assert client2.get("/health").json()["wal"]["records"] == 7
    service2.close()
