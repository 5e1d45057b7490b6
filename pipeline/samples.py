"""The sample library the demo and the tests use: every kind of file a real library has."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

from connectors.plugin import DemoFile

DEEP = ("Brand", "Campaigns", "2026", "Spring", "Hero banners", "Retina", "Übergrößen")


SampleFile = DemoFile
"""One file of the sample library (the emulators seed these)."""


def _image(rng: random.Random, fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle((x0, y0, x0 + size[0] // 4, y0 + size[1] // 4),
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def _pdf(text: str) -> bytes:
    from PIL import Image, ImageDraw

    page = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(page).text((20, 90), text, fill="black")
    out = io.BytesIO()
    page.save(out, format="PDF")
    return out.getvalue()


def sample_library(seed: int = 7) -> Iterator[SampleFile]:
    """At least 60 files of every kind a real library has, deterministic."""
    rng = random.Random(seed)
    folders: list[tuple[str, ...]] = [
        (), ("Products",), ("Products", "Shoes"), ("Products", "Bags"), ("Team",),
        ("Docs",), ("Press kit 2026",), ("Café & Bar",),
        *[DEEP[:i] for i in range(1, len(DEEP) + 1)],
    ]
    n = 0
    for folder in folders:
        for i in range(4):
            n += 1
            fmt, ext, ctype = (("PNG", "png", "image/png") if n % 2
                               else ("JPEG", "jpg", "image/jpeg"))
            name = f"image {n:02d}.{ext}" if i != 2 else f"bild-{n:02d}-größe.{ext}"
            yield SampleFile(
                folder, name, _image(rng, fmt, (64 + 8 * i, 48 + 4 * i)), ctype,
                title=f"Sample image {n}", alt=f"A generated sample picture number {n}",
                alt_de=f"Ein erzeugtes Beispielbild Nummer {n}",
                tags=("demo", "image") if n % 3 else ("demo",),
                focus="0.5,0.5" if n % 4 == 0 else None,
            )
    yield SampleFile(("Docs",), "Brand guide.pdf", _pdf("assetferry brand guide"),
                     "application/pdf", title="Brand guide", tags=("docs",))
    yield SampleFile(("Docs",), "readme.txt", b"Sample text asset for the assetferry demo.\n",
                     "text/plain", title="Read me")
    yield SampleFile(("Docs",), "empty.txt", b"", "text/plain", title="An empty file")
    yield SampleFile(DEEP, "deepest file.png", _image(rng, "PNG", (32, 32)), "image/png",
                     title="Seven levels down", alt="The deepest asset")


def write_local_library(root: Path, files: list[SampleFile]) -> None:
    manifest: dict[str, dict[str, object]] = {}
    for f in files:
        folder = root.joinpath(*f.folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f.name).write_bytes(f.data)
        entry: dict[str, object] = {"title": f.title, "tags": list(f.tags)}
        if f.alt:
            entry["alt_text"] = f.alt
        if f.alt_de:
            entry["locales"] = {"de": {"alt_text": f.alt_de}}
        manifest["/".join((*f.folder, f.name))] = entry
    (root / ".assetferry.json").write_text(
        json.dumps({"version": 1, "assets": manifest}, ensure_ascii=False, indent=1),
        encoding="utf-8")
