import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from motorec.errors import MotorecError
from motorec.serving.bundle import ARRAYS, MANIFEST, load_bundle, sha256_file
from motorec.serving.export import export_bundle


def test_bundle_is_safetensors_and_json_only(bundle_dir):
    files = {p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file()}
    assert files == {
        "manifest.json",
        "arrays.safetensors",
        "items.json",
        "tokenizer/tokenizer.json",
        "tokenizer/tokenizer.safetensors",
        ".motorec.json",
    }  # the last: motorec's output marker


def test_manifest_records_how_items_and_users_are_embedded(bundle):
    m = bundle.manifest
    assert m["item_vectors"]["method"] == "ridge"  # bpr has no content path and no hook
    assert m["item_vectors"]["items_without_train_interactions_from_content"] > 0
    assert m["versions"]["motorec"] and m["versions"]["faiss"]
    assert m["fold_in"]["reg"] > 0 and m["tokens"]["source"] == "tokenizer"
    assert bundle.item_tokens.shape == (m["n_items"], len(m["tokens"]["slots"]))
    # cold items (no train interactions) now carry their content-mapped vector, not random init
    cold = bundle.item_degree == 0
    x = np.concatenate([np.asarray(bundle.feature_mean[k]) for k in sorted(bundle.modalities)])
    assert cold.any() and np.isfinite(bundle.item_vectors[cold]).all()
    assert bundle.content_map(x[None, :]).shape == (1, bundle.dim)


def _copy(bundle_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(bundle_dir, out)
    return out


def test_tampered_array_is_refused(bundle_dir, tmp_path):
    out = _copy(bundle_dir, tmp_path)
    arrays = load_file(str(out / ARRAYS))
    arrays["item_vectors"][0, 0] += 1.0
    save_file(arrays, str(out / ARRAYS))
    with pytest.raises(MotorecError, match="checksum"):
        load_bundle(out)


def test_newer_format_and_wrong_shapes_are_refused(bundle_dir, tmp_path):
    out = _copy(bundle_dir, tmp_path)
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(MotorecError, match="format version 99"):
        load_bundle(out)
    arrays = load_file(str(out / ARRAYS))
    arrays["user_vectors"] = arrays["user_vectors"][:-1]
    save_file(arrays, str(out / ARRAYS))
    manifest["files"][ARRAYS] = sha256_file(out / ARRAYS)
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(MotorecError, match="user_vectors"):
        load_bundle(out)


def test_not_a_bundle_and_no_overwrite(bundle_dir, run_dir, tmp_path):
    with pytest.raises(MotorecError, match=r"manifest.json not found"):
        load_bundle(tmp_path)
    with pytest.raises(MotorecError, match="--overwrite"):
        export_bundle(run_dir, bundle_dir)
