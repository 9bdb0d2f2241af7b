"""Feature extraction from raw item content with encoders bundled in pip packages (no network).

Text: all-MiniLM-L6-v2 (384-d, L2-normalised). Images: EfficientNet-Lite0 (1280-d). Encoders load
lazily and stay cached, so the service can encode one new item per call.
"""

from __future__ import annotations

from motorec.features.catalog import FeatureReport, extract_catalog_features
from motorec.features.image import IMAGE_DIM, encode_images, load_image_encoder
from motorec.features.presets import PRESETS, CatalogSpec, generic
from motorec.features.reference import compare_with_reference, row_cosines
from motorec.features.tables import order_by_mapping, read_table
from motorec.features.template import render_texts
from motorec.features.text import TEXT_DIM, encode_texts, load_text_encoder

__all__ = [
    "IMAGE_DIM",
    "PRESETS",
    "TEXT_DIM",
    "CatalogSpec",
    "FeatureReport",
    "compare_with_reference",
    "encode_images",
    "encode_texts",
    "extract_catalog_features",
    "generic",
    "load_image_encoder",
    "load_text_encoder",
    "order_by_mapping",
    "read_table",
    "render_texts",
    "row_cosines",
]
