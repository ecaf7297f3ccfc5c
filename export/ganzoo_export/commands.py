"""What `ganzoo-run` and ganzoo's own `generate`/`info` commands do, shared so both behave alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ganzoo_export.card import card_json, format_card
from ganzoo_export.errors import RuntimeInputError
from ganzoo_export.images import load_image_exif, make_grid, save_image
from ganzoo_export.runtime import CPU, GanzooModel, open_session, read_metadata

GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def describe(model: Path, as_json: bool = False) -> str:
    """The model card of ``model`` as aligned text, or its raw properties as JSON."""
    meta = read_metadata(open_session(Path(model), [CPU], quiet=True))
    return card_json(meta) if as_json else format_card(meta, Path(model).name)


def providers_from(text: str | None) -> list[str] | None:
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def generate_to(
    model: GanzooModel, n: int, seed: int, label: str | None, out: Path, batch_size: int = 64
) -> str:
    """Write ``n`` images to a grid (``out`` ends in .png, .jpg...) or a folder, one batch at a time."""
    if out.suffix.lower() in GRID_SUFFIXES:
        images = model.generate(n, seed=seed, labels=label, batch_size=batch_size)
        save_image(make_grid(images, nrow=max(1, math.ceil(math.sqrt(n)))), out)
        return f"wrote {out} ({n} images, seed {seed}, providers {', '.join(model.providers)})"
    if out.suffix:
        raise RuntimeInputError(f"--out {out} is neither a grid image ({', '.join(GRID_SUFFIXES)}) nor a folder")
    out.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(n - 1)))
    for start, images in model.iter_generate(n, seed=seed, labels=label, batch_size=batch_size):
        for offset, image in enumerate(images):
            save_image(image, out / f"{start + offset:0{digits}d}.png")
    return f"wrote {n} images to {out} (seed {seed})"


def image_files(inputs: Sequence[Path]) -> list[Path]:
    """Files as given, and the images directly inside each folder, sorted by name."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif item.is_file():
            found.append(item)
        else:
            raise RuntimeInputError(f"no file or folder at {item}; check the path")
    if not found:
        raise RuntimeInputError(f"no images in {', '.join(map(str, inputs))}; give image files or folders of them")
    return found


def translate_files(
    model: GanzooModel, inputs: Sequence[Path], out: Path, tile: int | None, overlap: int | None
) -> str:
    """Translate every image into ``out`` under its own name; never overwrites an input."""
    images = image_files(inputs)
    targets = [out / image.name for image in images]
    clashes = {target for target in targets if targets.count(target) > 1}
    if clashes:
        raise RuntimeInputError(f"several inputs are named {sorted(t.name for t in clashes)}; translate them separately")
    for image, target in zip(images, targets):
        if target.exists() and target.resolve() == image.resolve():
            raise RuntimeInputError(f"translating {image} into {out} would overwrite it; choose another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    for image, target in zip(images, targets):
        pixels = load_image_exif(image, model.metadata.input_channels)
        save_image(model.translate(pixels, tile=tile, overlap=overlap), target)
    return f"translated {len(images)} images into {out}"
