import pytest
import torch

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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy CPU two threads spin-wait badly.
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}


@pytest.fixture(scope="session")
def tiny_dcgan_run(tmp_path_factory):
    """A finished 4-step tiny DCGAN run (grids and checkpoints at steps 2 and 4). Read-only: copy it
    before damaging it."""
    from ganzoo.api import train

    run = tmp_path_factory.mktemp("tiny-dcgan") / "run"
    train("dcgan", preset="tiny", steps=4, out=run, overrides={**TINY, "sample_every": 2, "checkpoint_every": 2})
    return run
