"""`ganzoo-run` (or `python -m ganzoo_export`): use exported models with the runtime alone.

argparse, not typer: the runtime depends on onnxruntime, numpy and Pillow only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ganzoo_export import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganzoo-run",
        description="Generate and translate images with ONNX models exported by ganzoo (no PyTorch needed).",
    )
    parser.add_argument("--version", action="version", version=f"ganzoo-runtime {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="print a model's card (what it is and how to use it)")
    info.add_argument("model", type=Path)
    info.add_argument("--json", action="store_true", help="the raw ganzoo.* metadata as JSON")

    generate = commands.add_parser("generate", help="draw images from a generator")
    generate.add_argument("model", type=Path)
    generate.add_argument("-n", "--num", type=int, default=64, help="how many images (default 64)")
    generate.add_argument("--seed", type=int, default=0, help="the same seed gives the same images everywhere")
    generate.add_argument("--class", dest="label", help="conditional models: a class index or name")
    generate.add_argument("--out", type=Path, default=Path("grid.png"), help="a grid .png, or a folder")
    generate.add_argument("--batch-size", type=int, default=64)
    generate.add_argument("--providers", help="comma-separated onnxruntime providers (default: CUDA if usable)")

    translate = commands.add_parser("translate", help="translate image files at their own size")
    translate.add_argument("model", type=Path)
    translate.add_argument("inputs", type=Path, nargs="+", help="image files and folders of images")
    translate.add_argument("--out", type=Path, required=True, help="output folder; file names are kept")
    translate.add_argument("--tile", type=int, help="tile side for large images (default: the model's max_size)")
    translate.add_argument("--overlap", type=int, help="pixels shared by neighbouring tiles (default 32)")
    translate.add_argument("--providers", help="comma-separated onnxruntime providers")

    web = commands.add_parser("web", help="write a static web page that runs the model in the browser")
    web.add_argument("model", type=Path)
    web.add_argument("--out", type=Path, required=True, help="folder for the page")
    web.add_argument("--onnxruntime-web", type=Path, help="a local onnxruntime-web package or its dist folder")
    return parser


def run(args: argparse.Namespace) -> str:
    from ganzoo_export import commands
    from ganzoo_export.runtime import GanzooModel

    if args.command == "info":
        return commands.describe(args.model, as_json=args.json)
    if args.command == "web":
        from ganzoo_export.web import write_site

        return write_site(args.model, args.out, args.onnxruntime_web)
    model = GanzooModel(args.model, providers=commands.providers_from(args.providers))
    if args.command == "generate":
        return commands.generate_to(model, args.num, args.seed, args.label, args.out, args.batch_size)
    return commands.translate_files(model, args.inputs, args.out, args.tile, args.overlap)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        print(run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `ganzoo-run info --json | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:
        if args.debug or os.environ.get("GANZOO_DEBUG") == "1":
            raise
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        if not (getattr(exc, "user_facing", False) or isinstance(exc, OSError)):
            message = f"{type(exc).__name__}: {message} (run with --debug for the traceback)"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
