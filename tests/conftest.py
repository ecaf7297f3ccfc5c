import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Tests that register plugins must not leak them into other tests."""
    from ganzoo import registry

    registry.reset()
    yield
    registry.reset()


TINY = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}
