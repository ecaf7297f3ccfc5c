"""`ganzoo translate RUN_OR_MODEL INPUT...`: image-to-image translation at each image's own size.

Works for any translator: a run whose plugin exports task "translate", or an ONNX file with
``ganzoo.task=translate``. Images are padded to the size multiple the network needs and cropped
back, and large ones run in overlapping tiles, through the same tiling code for both backends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer

from ganzoo.errors import UserError

JPEG_LIKE = (".jpg", ".jpeg", ".webp")
JPEG_QUALITY = 95  # Pillow's default of 75 visibly blurs translated photos


@dataclass
class Translator:
    """uint8 HWC -> uint8 HWC at the same size, for images with ``channels`` channels."""

    translate: Callable  # (np.ndarray) -> np.ndarray
    channels: int
    direction: str
    size_multiple: int


def check_tiling(tile: int, overlap: int, size_multiple: int) -> None:
    usable = tile // size_multiple * size_multiple  # tiles are whole multiples of what the net needs
    if usable < size_multiple:
        raise UserError(
            f"--tile {tile} is smaller than the {size_multiple} pixels this model needs: use --tile >= {size_multiple}"
        )
    if not 0 <= overlap < usable:
        raise UserError(f"--overlap {overlap} must be at least 0 and below the tile size {usable}")


def pick_direction(available: Sequence[str], requested: str | None, source: str) -> str:
    if requested is not None and requested not in available:
        fix = f"use the model exported for {requested}" if len(available) == 1 else "pass one of those"
        raise UserError(f"{source} translates {' and '.join(available)}, not {requested}: {fix}")
    if requested is None and len(available) > 1:
        raise UserError(f"{source} translates {' and '.join(available)}: choose one with --direction")
    return requested or available[0]


def onnx_translator(
    path: Path, direction: str | None, providers: str | None, tile: int, overlap: int
) -> Translator:
    from ganzoo_export.errors import MetadataError, RuntimeInputError
    from ganzoo_export.runtime import GanzooModel

    try:
        model = GanzooModel(path, providers=providers.split(",") if providers else None)
    except (MetadataError, RuntimeInputError) as exc:
        raise UserError(str(exc)) from None
    meta = model.metadata
    if meta.task != "translate":
        raise UserError(f"{path.name} is a {meta.task} model, not a translator: use `ganzoo generate` with it")
    if meta.direction is None and direction is not None:
        raise UserError(f"{path.name} does not name its direction: leave out --direction")
    chosen = pick_direction([meta.direction], direction, path.name) if meta.direction else "as exported"
    translate_one = lambda image: model.translate(image, tile=tile, overlap=overlap)  # noqa: E731
    return Translator(translate_one, meta.input_channels, chosen, meta.size_multiple or 1)


def run_translator(
    run: Path, direction: str | None, device: str, checkpoint: Path | None, tile: int, overlap: int
) -> Translator:
    import torch

    from ganzoo.api import load_run
    from ganzoo_export.images import from_uint8, to_uint8
    from ganzoo_export.tiling import translate_image

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = load_run(run, checkpoint, device=device)
    specs = {
        str(spec.metadata.get("direction", "")): spec
        for spec in loaded.plugin.exports(loaded.nets, {})
        if spec.task == "translate" and spec.input_roles == ("image",)
    }
    if not specs:
        raise UserError(f"{run} is a '{loaded.spec.plugin}' run, which does not translate images: use `ganzoo sample`")
    chosen = pick_direction(list(specs), direction, str(run))
    spec = specs[chosen]
    module = spec.module.to(device).eval()
    multiple = int(spec.metadata.get("size_multiple", 1))

    @torch.no_grad()
    def apply(batch):
        return module(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    def translate_one(image):
        result = translate_image(from_uint8(image), apply, multiple, tile=tile, overlap=overlap)
        return to_uint8(result.transpose(2, 0, 1)[None])[0]

    return Translator(translate_one, int(spec.example_inputs[0].shape[1]), chosen, multiple)


def collect_images(inputs: Sequence[Path]) -> list[Path]:
    """Files as given, and the images directly inside each folder, sorted."""
    from ganzoo.data.folders import scan_images

    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(scan_images(item))
        elif item.is_file():
            found.append(item)
        else:
            raise UserError(f"no file or folder at {item}: check the path")
    return found


def output_paths(images: Sequence[Path], out: Path, fmt: str | None, overwrite: bool) -> list[Path]:
    """Where each image goes; refuses before any work is done to write over an input or, unless
    ``overwrite``, over anything already in ``out`` (a symlink there counts: it is replaced, never followed)."""
    targets = [out / (image.stem + (f".{fmt}" if fmt else image.suffix)) for image in images]
    # Identities, not paths: an input reached through a symlink, a hard link or another spelling
    # of its name (case-insensitive disks) is still the input.
    inputs = {_identity(os.stat(image)) for image in images} | {_identity(os.lstat(image)) for image in images}
    seen: dict[Path, Path] = {}
    existing: list[Path] = []
    for image, target in zip(images, targets):
        if target in seen:
            raise UserError(
                f"{seen[target]} and {image} would both be written to {target}: "
                "translate them into separate --out folders"
            )
        seen[target] = image
        if not os.path.lexists(target):
            continue
        if _identity(os.lstat(target)) in inputs:
            raise UserError(f"translating {image} into {out} would overwrite the input {target}: choose another --out folder")
        if target.is_dir() and not target.is_symlink():
            raise UserError(f"{target} is a folder, where {image} would be written: choose another --out folder")
        existing.append(target)
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} already exists{more}: pass --overwrite to replace it, or choose another --out folder")
    return targets


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def check_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    from PIL import Image

    fmt = fmt.lower().lstrip(".")
    writer = Image.registered_extensions().get(f".{fmt}")
    if writer is None or writer not in Image.SAVE:
        raise UserError(f"--format {fmt} is not an image format Pillow can write: use png, jpg, webp, bmp or tiff")
    return fmt


def save(image, path: Path, overwrite: bool) -> None:
    from ganzoo import files

    options = {"quality": JPEG_QUALITY} if path.suffix.lower() in JPEG_LIKE else {}
    try:
        files.save_image(image, path, replace=overwrite, **options)
    except FileExistsError:
        raise UserError(
            f"{path} appeared while translating: pass --overwrite to replace it, or choose another --out folder"
        ) from None


def translate(
    model: Path = typer.Argument(..., help="A run folder, or a translator .onnx exported by ganzoo."),
    inputs: list[Path] = typer.Argument(..., help="Image files and folders of images."),
    out: Path = typer.Option(..., "--out", help="Output folder; file names are kept."),
    direction: str = typer.Option(None, "--direction", help="AtoB, BtoA...: needed when the model translates both ways."),
    fmt: str = typer.Option(None, "--format", help="Output format (png, jpg, webp...); default: each input's own."),
    tile: int = typer.Option(512, "--tile", help="Images larger than this run as overlapping tiles of this size."),
    overlap: int = typer.Option(32, "--overlap", help="Overlap of neighbouring tiles, in pixels."),
    strict: bool = typer.Option(False, "--strict/--no-strict", help="Fail on unreadable images instead of skipping them."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files already in --out (never an input)."),
    device: str = typer.Option("auto", "--device", help="Run folders: auto, cpu, cuda or cuda:N."),
    providers: str = typer.Option(None, "--providers", help="ONNX files: comma-separated onnxruntime providers."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="Run folders: a checkpoint file instead of the latest."),
) -> None:
    """Translate images at their own resolution, keeping file names (EXIF orientation applied).

    Never writes over an input; files already in --out are refused unless --overwrite; each output
    appears whole (written to a temporary file, then renamed), and a symlink in --out is replaced,
    never followed.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ganzoo.data.decode import ImageDecodeError, load_image
    from ganzoo.data.folders import unreadable_file_error

    fmt = check_format(fmt)
    images = collect_images(inputs)
    targets = output_paths(images, out, fmt, overwrite)
    if model.suffix.lower() == ".onnx":
        translator = onnx_translator(model, direction, providers, tile, overlap)
    else:
        translator = run_translator(model, direction, device, checkpoint, tile, overlap)
    check_tiling(tile, overlap, translator.size_multiple)
    out.mkdir(parents=True, exist_ok=True)
    skipped: list[ImageDecodeError] = []
    columns = (
        TextColumn(f"translating {translator.direction}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        for image_path, target in progress.track(list(zip(images, targets))):
            try:
                image = load_image(image_path, translator.channels)
            except ImageDecodeError as err:
                if strict:
                    raise unreadable_file_error(err) from err
                skipped.append(err)
                continue
            save(translator.translate(image), target, overwrite)
    typer.echo(f"translated {len(images) - len(skipped)} images ({translator.direction}) into {out}")
    if skipped:
        first = skipped[0]
        typer.echo(f"skipped {len(skipped)} unreadable images (first: {first}); --strict makes this an error", err=True)


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)
