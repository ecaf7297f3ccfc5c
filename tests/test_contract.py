"""Every registered plugin (built-in or installed) passes the contract check, as timm tests every model."""

from __future__ import annotations

import pytest

from ganzoo import registry
from ganzoo.testing import check_plugin

# What a plugin's check needs beyond its tiny preset, and what it must produce.
OPTIONS = {"cgan": {"condition": {"class": "three"}}}
EXPORTS = {
    "dcgan": ["dcgan-generator.onnx"],
    "cgan": ["cgan-generator.onnx"],
    "progan": ["progan-generator.onnx"],
    "cyclegan": ["cyclegan-AtoB.onnx", "cyclegan-BtoA.onnx"],
}


@pytest.mark.parametrize("name", registry.list_plugins())
def test_every_registered_plugin_honours_the_contract(name, tmp_path):
    report = check_plugin(name, tmp_path, **OPTIONS.get(name, {}))
    assert report.sample_shape[0] == 3 and report.losses
    if name in EXPORTS:
        assert [p.name for p in report.exports] == EXPORTS[name]


def test_the_builtins_are_all_checked():
    assert set(EXPORTS) <= set(registry.list_plugins())


def test_the_smallest_plugin_in_the_docs_is_complete(tmp_path):
    """docs/plugins.md's first code block, as written, passes the contract check."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "docs/plugins.md", "exec"), namespace)
    report = check_plugin(namespace["TinyGAN"], tmp_path, data="digits")
    assert report.sample_shape == (3, 1, 16, 16)
    assert [p.name for p in report.exports] == ["tiny-gan-generator.onnx"]
