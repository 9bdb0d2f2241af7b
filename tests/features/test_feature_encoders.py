"""Encoders load lazily once and serve single items, as the online service will call them."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from motorec.features import encode_images, encode_texts, load_image_encoder, load_text_encoder


def test_text_encoder_is_cached_and_rows_are_unit_norm():
    one = encode_texts(["A film about a robot."])
    hits = load_text_encoder.cache_info().hits
    again = encode_texts(["A film about a robot.", "A documentary on bees."], batch_size=1)
    assert load_text_encoder.cache_info().hits == hits + 1
    assert one.shape == (1, 384) and one.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(again, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(one[0], again[0], atol=1e-5)


def test_image_encoder_accepts_path_bytes_and_pil(tmp_path):
    img = Image.new("RGB", (92, 138), (10, 120, 200))
    img.save(tmp_path / "p.png")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    feats = encode_images([tmp_path / "p.png", buf.getvalue(), img.convert("L").convert("RGB")], batch_size=2)
    assert feats.shape == (3, 1280) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[0], feats[1], rtol=1e-6)
    assert load_image_encoder.cache_info().currsize >= 1
