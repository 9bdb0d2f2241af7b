"""Raw item content (text fields, an image) -> the feature vectors the bundle's model was trained on.

Text goes through the bundle's text template (the recipe that produced the training features) and
all-MiniLM-L6-v2; images through EfficientNet-Lite0 (motorec.features). A modality the request
does not cover gets the catalogue's mean feature, as MMRec does for missing content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from motorec.errors import MotorecError
from motorec.features.template import field_text, template_fields

if TYPE_CHECKING:
    from PIL import Image

ENCODERS = {"text": 384, "image": 1280}  # raw-content encoders motorec ships, by modality and width
MAX_IMAGE_PIXELS = 4096 * 4096  # a tiny file can declare a huge canvas; refuse before decoding it
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP")


class TooLarge(MotorecError):
    """Content over a size limit (HTTP 413)."""


@dataclass
class ItemContent:
    """What one ingest request carries, after parsing (any subset may be empty)."""

    features: Mapping[str, np.ndarray | list[float]] = field(default_factory=dict)
    text: str | None = None
    fields: dict[str, Any] | None = None
    image: bytes | None = None


def render_fields(fields: dict[str, Any], template: str | None) -> str:
    """The item text from its fields through the bundle's template (fields joined when it has none)."""
    if template is None:
        return ". ".join(f"{k}: {field_text(v)}" for k, v in fields.items() if field_text(v).strip())
    names = template_fields(template)
    if not any(field_text(fields.get(n)).strip() for n in names):
        raise MotorecError(
            f"none of the text template's fields ({', '.join(names)}) is given; the template is {template!r}."
        )
    return template.format(**{n: field_text(fields.get(n)) for n in names})


def decode_upload(data: bytes) -> Image.Image:
    """An uploaded image decoded to RGB, or a MotorecError (TooLarge for size limits).

    Only the JPEG, PNG and WebP decoders are tried: left to itself PIL tries every format it knows,
    some of which hand the file to external programs. The pixel count is checked from the header,
    before anything is decoded (a few bytes can declare a canvas of billions of pixels).
    """
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise TooLarge(
                        f"the image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS} pixels "
                        f"(4096x4096) are accepted."
                    )
                return img.convert("RGB")  # the full decode, so a truncated file fails here
    except TooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"the image declares too many pixels ({exc}).") from exc
    except UnidentifiedImageError as exc:
        raise MotorecError("the image is not a JPEG, PNG or WebP file (the only formats accepted).") from exc
    except Exception as exc:  # decoders of untrusted bytes raise OSError, SyntaxError, struct.error, ...
        raise MotorecError(f"the image cannot be decoded ({type(exc).__name__}): it is truncated or damaged.") from exc


class ContentEncoder:
    """Turns ItemContent into one feature vector per bundle modality (+ which were imputed)."""

    def __init__(self, modalities: dict[str, int], feature_mean: dict[str, np.ndarray], template: str | None) -> None:
        self.modalities = modalities
        self.feature_mean = feature_mean
        self.template = template
        self.raw = {m for m, d in modalities.items() if ENCODERS.get(m) == d}

    def preload(self) -> None:
        """Load the raw-content encoders now, so the first ingest does not pay for it."""
        if "text" in self.raw:
            from motorec.features import load_text_encoder

            load_text_encoder("cpu")
        if "image" in self.raw:
            from motorec.features import load_image_encoder

            load_image_encoder("cpu")

    def _require_raw(self, modality: str) -> None:
        if modality not in self.raw:
            have = ", ".join(f"{m} ({d}-d)" for m, d in self.modalities.items()) or "none"
            raise MotorecError(
                f"this bundle has no '{modality}' modality that motorec can encode from raw content "
                f"(bundle modalities: {have}); send precomputed features instead."
            )

    def encode(self, content: ItemContent) -> tuple[dict[str, np.ndarray], list[str], str | None]:
        """(features per modality, imputed modalities, item text)."""
        feats: dict[str, np.ndarray] = {}
        for name, vec in content.features.items():
            if name not in self.modalities:
                raise MotorecError(
                    f"unknown modality '{name}'; this bundle has {', '.join(self.modalities) or 'none'}."
                )
            vec = np.asarray(vec, dtype=np.float32)
            if vec.shape != (self.modalities[name],):
                raise MotorecError(f"features '{name}' must have {self.modalities[name]} values, got {vec.size}.")
            if not np.isfinite(vec).all():
                raise MotorecError(f"features '{name}' contain NaN or inf.")
            feats[name] = vec
        text = content.text
        if content.fields:
            if text is not None:
                raise MotorecError("give either 'text' or 'fields', not both.")
            text = render_fields(content.fields, self.template)
        if text is not None:
            self._require_raw("text")
            if "text" in feats:
                raise MotorecError("both raw text and precomputed 'text' features given; send one.")
            from motorec.features import encode_texts

            feats["text"] = encode_texts([text], device="cpu")[0]
        if content.image is not None:
            image = decode_upload(content.image)  # a bad or oversized upload is named as such first
            self._require_raw("image")
            if "image" in feats:
                raise MotorecError("both an image and precomputed 'image' features given; send one.")
            from motorec.features import encode_images

            feats["image"] = encode_images([image], device="cpu")[0]
        if not feats:
            raise MotorecError("the item carries no content: give text, fields, an image or precomputed features.")
        imputed = sorted(set(self.modalities) - set(feats))
        for m in imputed:
            feats[m] = self.feature_mean[m]
        return feats, imputed, text
