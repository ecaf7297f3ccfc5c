"""`ganzoo web MODEL.onnx --out site/`: a static page that runs the model in the browser.

The folder holds everything (page, JavaScript runtime, onnxruntime-web and its wasm file, the
model) and needs no server code: any static file host serves it. Browsers do not run ES modules
or fetch files from file:// URLs, so open it through a server (`python -m http.server -d site`).

onnxruntime-web (14 MB of WebAssembly) is not shipped inside this Python package. It is taken,
in this order, from: the folder given (``--onnxruntime-web``, or GANZOO_ONNXRUNTIME_WEB), a
``node_modules/onnxruntime-web`` in the current folder or above it, the cache of an earlier
download, or else the npm registry: the pinned version's tarball, checked against its sha512.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

from ganzoo_export.errors import RuntimeInputError
from ganzoo_export.runtime import CPU, open_session, read_metadata

# Must match export/js/package-lock.json (a test holds them together).
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
ORT_WEB_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
# The WebAssembly (CPU) build: its ES module (with the loader bundled in), the loader on its own
# (fetched when wasmPaths is set), and the SIMD + threads binary every current browser runs.
ORT_WEB_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
RUNTIME_FILES = ("errors.js", "images.js", "latents.js", "metadata.js", "model.js", "tiling.js", "web.js")
SITE_FILES = ("index.html", "app.js")
MARKER = ".ganzoo-web"  # marks a folder this command wrote, which it may overwrite
ORT_LICENSE = """onnxruntime-web {version} (https://github.com/microsoft/onnxruntime), MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def js_assets() -> Path:
    """The JavaScript runtime and page: inside the installed package, or export/js in a checkout."""
    here = Path(__file__).resolve().parent
    for root in (here / "js", here.parent / "js"):
        if (root / "src" / "model.js").is_file() and (root / "site" / "index.html").is_file():
            return root
    raise RuntimeInputError("this ganzoo-runtime install lacks its JavaScript files; reinstall ganzoo-runtime")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ganzoo" / f"onnxruntime-web-{ORT_WEB_VERSION}"


def _dist_folder(folder: Path) -> Path | None:
    """``folder`` or its dist/ if it holds the onnxruntime-web files."""
    for candidate in (folder, folder / "dist"):
        if all((candidate / name).is_file() for name in ORT_WEB_FILES):
            return candidate
    return None


def find_onnxruntime_web(given: Path | None = None, download: bool = True) -> Path:
    """The folder holding ORT_WEB_FILES (see the module docstring for where it looks)."""
    given = given or (Path(os.environ["GANZOO_ONNXRUNTIME_WEB"]) if os.environ.get("GANZOO_ONNXRUNTIME_WEB") else None)
    if given is not None:
        found = _dist_folder(given)
        if found is None:
            raise RuntimeInputError(
                f"{given} holds no onnxruntime-web build ({', '.join(ORT_WEB_FILES)}); give the onnxruntime-web "
                "package folder (node_modules/onnxruntime-web) or its dist/ folder"
            )
        return found
    for folder in (Path.cwd(), *Path.cwd().parents):
        found = _dist_folder(folder / "node_modules" / "onnxruntime-web")
        if found is not None:
            return found
    found = _dist_folder(cache_dir())
    if found is not None:
        return found
    if not download:
        raise RuntimeInputError(
            f"onnxruntime-web is not here: `npm install onnxruntime-web@{ORT_WEB_VERSION}` and pass "
            "--onnxruntime-web node_modules/onnxruntime-web"
        )
    return download_onnxruntime_web(ORT_WEB_URL, ORT_WEB_INTEGRITY, cache_dir())


def download_onnxruntime_web(url: str, integrity: str, target: Path) -> Path:
    """Fetch the npm tarball, check its sha512 against ``integrity``, keep ORT_WEB_FILES in ``target``."""
    print(f"downloading onnxruntime-web {ORT_WEB_VERSION} from the npm registry (once; cached in {target})",
          file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    except OSError as exc:
        raise RuntimeInputError(
            f"could not download onnxruntime-web ({exc}); offline, `npm install onnxruntime-web@{ORT_WEB_VERSION}` "
            "elsewhere and pass --onnxruntime-web with its folder"
        ) from exc
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise RuntimeInputError(f"the onnxruntime-web download from {url} does not match its pinned {algorithm}; not used")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in ORT_WEB_FILES:
            member = archive.extractfile(f"package/dist/{name}")
            if member is None:
                raise RuntimeInputError(f"the onnxruntime-web package lacks dist/{name}")
            (staging / name).write_bytes(member.read())
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # a complete folder or none: an interrupted download is never used
    return target


def write_site(model: Path, out: Path, onnxruntime_web: Path | None = None) -> str:
    """Write the page for ``model`` into ``out``; returns a line saying how to open it."""
    model, out = Path(model), Path(out)
    meta = read_metadata(open_session(model, [CPU], quiet=True))  # refuse files the page could not run
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise RuntimeInputError(f"{out} is not empty and was not written by `ganzoo web`; choose a new or empty --out")
    ort_dist = find_onnxruntime_web(onnxruntime_web)
    assets = js_assets()
    for folder in ("ganzoo", "ort"):
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir(parents=True)
    for name in SITE_FILES:
        shutil.copyfile(assets / "site" / name, out / name)
    for name in RUNTIME_FILES:
        shutil.copyfile(assets / "src" / name, out / "ganzoo" / name)
    for name in ORT_WEB_FILES:
        shutil.copyfile(ort_dist / name, out / "ort" / name)
    (out / "ort" / "LICENSE.txt").write_text(ORT_LICENSE.format(version=ORT_WEB_VERSION))
    shutil.copyfile(model, out / "model.onnx")
    (out / MARKER).write_text(json.dumps({"model": model.name, "onnxruntime_web": ORT_WEB_VERSION}) + "\n")
    return (
        f"wrote a page for {model.name} ({meta.task}) to {out}; serve the folder with any static file server, "
        f"e.g. python -m http.server -d {out} 8000, and open http://localhost:8000"
    )
