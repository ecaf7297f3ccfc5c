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
