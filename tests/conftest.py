import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


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
