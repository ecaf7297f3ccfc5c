"""Helpers shared by the translation plugins' tests (CycleGAN, pix2pix)."""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.api import train
from ganzoo.engine import checkpoint as ckpt


class AnswerKeyOracle(nn.Module):
    """Returns the target of whichever answer-key input it is shown: a perfect translator."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        super().__init__()
        self.keys, self.values = inputs.flatten(1), targets
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        nearest = torch.cdist(x.flatten(1), self.keys).argmin(dim=1)
        return self.values[nearest] + self.anchor


def assert_resume_is_exact(plugin: str, settings: dict, tmp_path, steps: int = 4, preset: str | None = "tiny") -> tuple[dict, dict]:
    """Train ``steps`` straight, and half of them + resume + the rest: every weight, EMA copies
    included, must be equal. Returns the last checkpoints of both runs."""
    train(plugin, preset=preset, steps=steps, out=tmp_path / "straight", overrides=settings)
    train(plugin, preset=preset, steps=steps // 2, out=tmp_path / "split", overrides=settings)
    train(plugin, steps=steps, resume=tmp_path / "split")
    straight, split = (ckpt.load(ckpt.latest(tmp_path / name / "checkpoints")) for name in ("straight", "split"))
    for part in ("nets", "ema"):
        assert straight.get(part, {}).keys() == split.get(part, {}).keys(), f"{part}: different roles after resuming"
        for role, state in straight.get(part, {}).items():
            for key, tensor in state.items():
                assert torch.equal(tensor, split[part][role][key]), f"{part} {role}.{key} differs after resuming"
    return straight, split
