"""Finding Node, the npm packages of export/js and Chromium for the JavaScript and web page tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

JS = Path(__file__).resolve().parents[1] / "export" / "js"


def unavailable(problem: str) -> NoReturn:
    """Skip for want of a tool, or fail where CI promised it (GANZOO_REQUIRE_JS=1)."""
    if os.environ.get("GANZOO_REQUIRE_JS") == "1":
        pytest.fail(problem)
    pytest.skip(problem)


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    if not (JS / "node_modules" / "onnxruntime-node").is_dir():
        unavailable("export/js has no node_modules: run `npm ci --prefix export/js`")
    return node
