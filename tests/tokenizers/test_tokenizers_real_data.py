"""Acceptance on real features: ml100k-mm text + image, K = 256, 3 levels (kept CI-sized)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motorec.tokenizers import build_tokenizer

DATA = Path(__file__).resolve().parents[2].parent / "shared/data"
ML100K = DATA / "ml100k-mm"


@pytest.mark.skipif(
    not (ML100K / "text_feat.npy").is_file() or not (ML100K / "image_feat.npy").is_file(),
    reason=f"real data not available: {ML100K}/{{text,image}}_feat.npy missing",
)
def test_rqvae_ml100k_utilisation_and_collisions():
    feats = {m: np.load(ML100K / f"{m}_feat.npy", mmap_mode="r") for m in ("text", "image")}
    tok = build_tokenizer(
        "rqvae", codebook_size=256, levels=3, hidden=[256], warmup_epochs=4, epochs=2, device="cpu"
    ).fit(feats, seed=0)
    report = tok.diagnostics(feats)
    for mod in ("text", "image"):
        m = report["modalities"][mod]
        assert min(m["utilisation"]) >= 0.8, (mod, m["utilisation"])
        assert m["collision_rate"] <= 0.01, (mod, m["collision_rate"])
