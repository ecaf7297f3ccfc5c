"""Where metric networks and reference statistics are kept between runs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """`$GANZOO_CACHE`, else `~/.cache/ganzoo`."""
    root = os.environ.get("GANZOO_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "ganzoo"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
