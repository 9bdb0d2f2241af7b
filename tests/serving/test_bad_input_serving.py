"""The adversarial bad-input corpus of the service: HTTP bodies, uploads, the API key, damaged
logs and bundles at start-up. HTTP cases: the status (never 5xx), a detail naming the field, and
nothing written to the log; start-up cases: exit code 2 with a named error and no traceback, and
no file changed."""

from __future__ import annotations

import base64
import io
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from motorec.cli import main
from motorec.serving.app import MAX_BODY, create_app
from motorec.serving.service import RecommenderService

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_cli_bad_input import snapshot

KEY = "k" * 24


@pytest.fixture()
def served(bundle, tmp_path):
    service = RecommenderService(bundle, tmp_path / "wal.log", preload_encoders=False)
    yield TestClient(create_app(service), raise_server_exceptions=False), service
    service.close()


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def declared_png(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose header declares width x height (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def saved(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, fmt)
    return buf.getvalue()


IMAGES = [
    ("png_bomb_10G_pixels", declared_png(100_000, 100_000), 413, "too many pixels"),
    ("png_5000x5000", declared_png(5000, 5000), 413, "5000x5000 pixels"),
    ("gif", saved("GIF"), 422, "not a JPEG, PNG or WebP"),
    ("bmp", saved("BMP"), 422, "not a JPEG, PNG or WebP"),
    ("tiff", saved("TIFF"), 422, "not a JPEG, PNG or WebP"),
    ("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", 422, "not a JPEG, PNG or WebP"),
    ("truncated_png", png(64, 64)[:80], 422, "truncated or damaged"),
    ("text", b"hello, I am not an image", 422, "not a JPEG, PNG or WebP"),
    ("over_5_MiB", b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024), 413, "larger than"),
    # a valid picture: decoded, then refused only because this bundle has no 1280-d image modality
    ("valid_png", png(32, 32), 422, "no 'image' modality"),
]


@pytest.mark.parametrize(("name", "data", "status", "needle"), IMAGES, ids=[i[0] for i in IMAGES])
@pytest.mark.parametrize("route", ["form", "json"])
def test_uploads(served, tmp_path, route, name, data, status, needle):
    client, service = served
    if route == "json" and len(data) > 5 * 1024 * 1024:
        data = data[: 5 * 1024 * 1024 + 10]  # stays under the 8 MiB body cap once base64-encoded
    if route == "form":
        r = client.post("/items/form", data={"id": "up1"}, files={"image": ("x.png", data, "image/png")})
    else:
        r = client.post("/items", json={"id": "up1", "image_base64": base64.b64encode(data).decode()})
    assert r.status_code == status and needle in r.json()["detail"], r.text
    assert service.wal.records == 0


JSON = {"content-type": "application/json"}


def nested(depth: int) -> bytes:
    return b'{"id": "n1", "fields": ' + b"[" * depth + b"]" * depth + b"}"


BODIES = [
    ("nested_json_body", "post", "/items", {"content": nested(100_000), "headers": JSON}, (400, 422), ""),
    (
        "deep_fields_form",
        "post",
        "/items/form",
        {"data": {"id": "f1", "fields": "[" * 5000 + "]" * 5000}},
        (422,),
        "nested too deeply",
    ),
    (
        "nested_fields_form",
        "post",
        "/items/form",
        {"data": {"id": "f1", "fields": '{"a": {"b": [1]}}'}},
        (422,),
        "fields/a",
    ),
    ("fields_not_object", "post", "/items/form", {"data": {"id": "f1", "fields": "[1, 2]"}}, (422,), "fields"),
    ("fields_nan", "post", "/items/form", {"data": {"id": "f1", "fields": '{"year": NaN}'}}, (422,), "fields/year"),
    (
        "too_many_form_fields",
        "post",
        "/items/form",
        {"data": {**{f"x{i}": "1" for i in range(1500)}, "id": "f1"}},
        (400, 413, 422),
        "fields",
    ),
    (
        "oversize_form_field",
        "post",
        "/items/form",
        {"data": {"id": "f1", "title": "t" * (2 * 1024 * 1024)}},
        (400, 413, 422),
        "size",
    ),
    (
        "declared_oversize_body",
        "post",
        "/items",
        {"content": b" " * (MAX_BODY + 1), "headers": JSON},
        (413,),
        "larger than",
    ),
    (
        "chunked_oversize_body",
        "post",
        "/items",
        {"content": (b" " * (1024 * 1024),) * 9, "headers": JSON},
        (413,),
        "larger than",
    ),
    (
        "invalid_utf8_json",
        "post",
        "/items",
        {"content": b'{"id": "u1", "text": "\xff\xfe"}', "headers": JSON},
        (400, 422),
        "",
    ),
    (
        "huge_integer_json",
        "post",
        "/items",
        {"content": b'{"id": "u1", "features": {"text": [' + b"9" * 5000 + b"]}}"},
        (400, 422),
        "",
    ),
    (
        "unicode_item_id",
        "post",
        "/items",
        {"json": {"id": "f\u00fcr", "features": {}}, "headers": JSON},
        (422,),
        "body/id",
    ),
    ("path_traversal_id", "post", "/items", {"json": {"id": "../etc", "features": {}}}, (422,), "body/id"),
    ("id_129_chars", "post", "/items", {"json": {"id": "a" * 129, "features": {}}}, (422,), "body/id"),
    (
        "features_inf",
        "post",
        "/items",
        {"content": b'{"id": "u1", "features": {"text": [1e400]}}', "headers": JSON},
        (422,),
        "finite",
    ),
    (
        "features_string",
        "post",
        "/items",
        {"json": {"id": "u1", "features": {"text": "abc"}}},
        (422,),
        "body/features/text",
    ),
    (
        "too_many_fields_json",
        "post",
        "/items",
        {"json": {"id": "u1", "fields": {f"f{i}": "x" for i in range(65)}}},
        (422,),
        "body/fields",
    ),
    ("text_empty", "post", "/items", {"json": {"id": "u1", "text": ""}}, (422,), "body/text"),
    ("k_negative", "get", "/recommend/{user}?k=-5", {}, (422,), "query/k"),
    ("k_huge", "get", "/recommend/{user}?k=" + "9" * 40, {}, (422,), "query/k"),
    ("k_float", "get", "/recommend/{user}?k=2.5", {}, (422,), "query/k"),
    ("exclude_seen_junk", "get", "/recommend/{user}?exclude_seen=maybe", {}, (422,), "query/exclude_seen"),
    ("unicode_user_id", "get", "/recommend/%C3%BC", {}, (422,), "path/user_id"),
    ("invalid_utf8_user_id", "get", "/recommend/%FF%FE", {}, (404, 422), ""),
    ("token_code_huge", "get", "/tokens/text/0/" + "9" * 30, {}, (422,), "path/code"),
    ("token_level_negative", "get", "/tokens/text/-1/0", {}, (422,), "path/level"),
    ("interactions_empty", "post", "/users/u1/interactions", {"json": {"items": []}}, (422,), "body/items"),
    ("interactions_unknown_item", "post", "/users/u1/interactions", {"json": {"items": ["nope"]}}, (404,), "nope"),
    ("interactions_1001", "post", "/users/u1/interactions", {"json": {"items": ["a"] * 1001}}, (422,), "body/items"),
    ("interactions_bad_user", "post", "/users/%20x/interactions", {"json": {"items": ["a"]}}, (422,), "path/user_id"),
    ("unknown_user", "get", "/users/nobody", {}, (404,), "unknown user"),
    (
        "not_json_content_type",
        "post",
        "/items",
        {"content": b"id=1", "headers": {"content-type": "text/plain"}},
        (422,),
        "",
    ),
]


@pytest.mark.parametrize(("name", "method", "path", "kwargs", "statuses", "needle"), BODIES, ids=[b[0] for b in BODIES])
def test_request_bodies_and_parameters(served, bundle, name, method, path, kwargs, statuses, needle):
    client, service = served
    r = getattr(client, method)(path.format(user=bundle.catalog.user_ids[0]), **kwargs)
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert needle.lower() in r.json()["detail"].lower(), r.text[:300]
    assert service.wal.records == 0
    assert client.get("/health").status_code == 200


def test_no_request_of_the_corpus_gave_a_5xx(served, bundle):
    client, _ = served
    for _, method, path, kwargs, _, _ in BODIES:
        getattr(client, method)(path.format(user=bundle.catalog.user_ids[0]), **kwargs)
    assert 'status="5' not in client.get("/metrics").text


def test_api_key_guards_every_write_and_no_read(bundle, tmp_path):
    service = RecommenderService(bundle, tmp_path / "wal.log", preload_encoders=False)
    client = TestClient(create_app(service, api_key=KEY), raise_server_exceptions=False)
    feats = {m: [0.0] * d for m, d in bundle.modalities.items()}
    item = bundle.catalog.item_ids[0]
    writes = [
        ("/items", {"json": {"id": "k1", "features": feats}}),
        ("/users/u1/interactions", {"json": {"items": [item]}}),
        ("/items/form", {"data": {"id": "k2", "text": "x"}}),
        ("/admin/compact", {}),
    ]
    for path, kwargs in writes:
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY[:-1] + "K"}, {"Authorization": f"Bearer {KEY}"}):
            r = client.post(path, headers=headers, **kwargs)
            assert r.status_code == 401 and "X-API-Key" in r.json()["detail"], (path, headers, r.text)
    assert service.wal.records == 0
    assert client.post("/items", json={"id": "k1", "features": feats}, headers={"X-API-Key": KEY}).status_code == 201
    assert client.get("/items/k1").status_code == 200 and client.get("/health").status_code == 200
    # an oversize body without the key is refused before it is read (401, not 413)
    assert client.post("/items", content=b" " * (MAX_BODY + 10)).status_code == 401
    service.close()


# ------------------------------------------------------------------------- start-up (CLI)


@pytest.fixture()
def no_server(monkeypatch):
    """`motorec serve` up to the point where it would listen; the app it would serve is kept."""
    started = {}

    def fake_run(app, **kwargs):
        started.update(app=app, **kwargs)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return started


def serve_fails(argv, capsys, root, *needles) -> str:
    before = snapshot(root)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, (needle, flat)
    assert snapshot(root) == before
    return flat


def logged(bundle, path: Path, n: int = 4) -> bytes:
    service = RecommenderService(bundle, path, preload_encoders=False)
    for i in range(n):
        service.add_item(f"w{i}", _content(bundle, i))
    service.close()
    return path.read_bytes()


def _content(bundle, i):
    from motorec.serving.content import ItemContent

    return ItemContent(features={m: np.full(d, 0.01 * i, np.float32) for m, d in bundle.modalities.items()})


def _damage(data: bytes, how: str) -> bytes:
    lines = data.split(b"\n")
    last = len(data) - len(lines[-2]) - 1
    b = bytearray(data)
    if how == "flipped_byte":
        b[last + 30] ^= 0x04
    elif how == "zeroed_bytes":
        b[last - 20 : last + 20] = b"\0" * 40
    elif how == "cut_inside_last":
        del b[last + 40 :]
    elif how == "cut_whole_last":
        del b[last:]
    elif how == "bytes_missing_inside":
        del b[last - 60 : last - 50]
    return bytes(b)


@pytest.mark.parametrize(
    "how", ["flipped_byte", "zeroed_bytes", "cut_inside_last", "cut_whole_last", "bytes_missing_inside"]
)
def test_damaged_acknowledged_records_stop_the_start_and_repair_keeps_the_rest(
    bundle, bundle_dir, tmp_path, capsys, no_server, how
):
    wal = tmp_path / "state" / "wal.log"
    wal.parent.mkdir()
    wal.write_bytes(_damage(logged(bundle, wal), how))
    argv = ["serve", str(bundle_dir), "--wal", str(wal), "--no-preload"]
    serve_fails(argv, capsys, tmp_path, str(wal), "is damaged", "--repair-wal")
    assert not no_server
    assert main([*argv, "--repair-wal"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "repaired: kept" in err and no_server["host"] == "127.0.0.1"
    sides = list(tmp_path.glob("state/wal.log.damaged-*"))
    assert len(sides) == (how != "cut_whole_last") and all(p.stat().st_size > 0 for p in sides)
    assert main(argv) == 0  # the repaired log starts cleanly


def test_a_torn_tail_is_dropped_and_reported_at_start_and_in_health(bundle, bundle_dir, tmp_path, capsys, no_server):
    wal = tmp_path / "wal.log"
    logged(bundle, wal, 2)
    torn = b'0badc0de {"op":"item","id":"never-acknow'
    with open(wal, "ab") as f:
        f.write(torn)
    assert main(["serve", str(bundle_dir), "--wal", str(wal), "--no-preload"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"dropped a torn, unacknowledged tail of {len(torn)} bytes" in err
    health = TestClient(no_server["app"]).get("/health").json()
    assert health["wal"]["torn_tail_dropped_bytes"] == len(torn) and health["replayed_on_start"] == 2


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("manifest_truncated", "manifest.json is not valid JSON"),
        ("manifest_not_object", "not a motorec bundle manifest"),
        ("arrays_modified", "does not match its checksum"),
        ("items_missing", "items.json is missing"),
        ("files_outside", "inside the bundle"),
    ],
)
def test_damaged_bundles_do_not_start(bundle_dir, tmp_path, capsys, no_server, damage, needle):
    b = tmp_path / "b"
    shutil.copytree(bundle_dir, b)
    manifest = (b / "manifest.json").read_text()
    if damage == "manifest_truncated":
        (b / "manifest.json").write_text(manifest[:200])
    elif damage == "manifest_not_object":
        (b / "manifest.json").write_text("[]")
    elif damage == "arrays_modified":
        with open(b / "arrays.safetensors", "r+b") as f:
            f.seek(-3, 2)
            f.write(b"\x01\x02\x03")
    elif damage == "items_missing":
        (b / "items.json").unlink()
    else:
        m = json.loads(manifest)
        m["files"]["../../etc/passwd"] = "0" * 64
        (b / "manifest.json").write_text(json.dumps(m))
    serve_fails(["serve", str(b), "--wal", str(tmp_path / "w.log"), "--no-preload"], capsys, tmp_path, needle)
    assert not no_server


def test_a_foreign_file_as_log_is_refused_untouched(bundle_dir, tmp_path, capsys, no_server):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, no newline at the end")
    serve_fails(
        ["serve", str(bundle_dir), "--wal", str(notes), "--no-preload", "--repair-wal"],
        capsys,
        tmp_path,
        "not a motorec write-ahead log",
    )
    serve_fails(["serve", str(bundle_dir), "--wal", str(tmp_path), "--no-preload"], capsys, tmp_path, "is not a file")


def test_public_host_warns_and_the_api_key_comes_from_the_environment(
    bundle_dir, tmp_path, capsys, no_server, monkeypatch
):
    serve_fails(
        ["serve", str(bundle_dir), "--wal", str(tmp_path / "w.log"), "--no-preload", "--api-key", "short"],
        capsys,
        tmp_path,
        "at least 16 characters",
    )
    assert main(["serve", str(bundle_dir), "--wal", str(tmp_path / "w.log"), "--no-preload", "--host", "0.0.0.0"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: binding 0.0.0.0" in err and "without --api-key anyone" in err
    monkeypatch.setenv("MOTOREC_API_KEY", KEY)
    assert main(["serve", str(bundle_dir), "--wal", str(tmp_path / "w.log"), "--no-preload", "--host", "::1"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning" not in err and "write requests need the API key" in err
    client = TestClient(no_server["app"])  # the service behind it is closed once `serve` returns: 503
    assert client.post("/admin/compact").status_code == 401
    assert client.post("/admin/compact", headers={"X-API-Key": KEY}).status_code == 503


def test_a_compaction_that_fails_is_503_and_keeps_the_log(served, bundle, monkeypatch):
    import os

    client, service = served
    feats = {m: [0.0] * d for m, d in bundle.modalities.items()}
    assert client.post("/items", json={"id": "keep-me", "features": feats}).status_code == 201
    before = service.wal.path.read_bytes()

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    r = client.post("/admin/compact")
    monkeypatch.undo()
    assert r.status_code == 503 and "compaction failed (No space left on device)" in r.json()["detail"]
    assert service.wal.path.read_bytes() == before and not list(service.wal.path.parent.glob("*.compact.tmp"))
    assert client.post("/admin/compact").status_code == 200 and client.get("/items/keep-me").status_code == 200
