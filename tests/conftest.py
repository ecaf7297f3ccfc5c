import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_configure(config):
    """Stop at once if the installed ganzoo-runtime is not this checkout's export/ganzoo_export.

    `pip install -e .` installs the runtime from export/ as a copy; after editing export/, the
    tests would otherwise run the old copy.
    """
    import filecmp
    from pathlib import Path

    import ganzoo_export

    installed = Path(ganzoo_export.__file__).resolve().parent
    export = Path(__file__).resolve().parents[1] / "export"
    if installed == export / "ganzoo_export":
        return
    # The Python package, and the JavaScript files its wheel carries for `ganzoo web`.
    pairs = [(export / "ganzoo_export", installed, "*.py")]
    pairs += [(export / "js" / part, installed / "js" / part, "*.*") for part in ("src", "site")]
    differ, missing = [], []
    for source, copy, pattern in pairs:
        names = sorted(p.name for p in source.glob(pattern))
        _, changed, absent = filecmp.cmpfiles(source, copy, names, shallow=False)
        differ += changed
        missing += absent
    if differ or missing:
        pytest.exit(
            f"the installed ganzoo-runtime ({installed}) differs from export/ in {differ + missing}: "
            "run `pip install -e ./export` (or `pip install -e .` again)",
            returncode=4,
        )


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Tests that register plugins must not leak them into other tests."""
    from ganzoo import registry

    registry.reset()
    yield
    registry.reset()


TINY = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}
