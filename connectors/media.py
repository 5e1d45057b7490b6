"""Facts about a file's bytes that several connectors and emulators need."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image


def image_size(source: Path | bytes) -> tuple[int, int] | None:
    """Width and height from an image's header; ``None`` for anything that isn't one.

    Reads the header only (Pillow opens lazily), so it is cheap for large files; an unreadable
    or hostile header (decompression bomb) means "size unknown", never an error.
    """
    target = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(target) as image:
                width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return (int(width), int(height)) if width > 0 and height > 0 else None
