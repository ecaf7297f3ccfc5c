"""Helpers for the multi-process tests: a tiny folder dataset, a batch-decoupled plugin, a spawn harness.

Spawned workers import this module by name, so it holds everything they need.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganzoo.plugin import Batch, OptimizerSpec, Phase, Plugin, Stage


def write_image_folder(folder: Path, count: int = 32, size: int = 16, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@dataclass
class DecoupledConfig:
    width: int = 16
    lr: float = 1e-3


class DecoupledGAN(Plugin):
    """Per-sample losses only (no BatchNorm, no noise): the fake of an image is G(flipped image).

    A batch of 2b on one process and two batches of b on two processes then give the same mean
    gradient, which is what the equivalence test checks.
    """

    name = "decoupled-test-gan"
    Config = DecoupledConfig

    def build(self):
        features = self.data.channels * self.data.size**2
        w = self.config.width
        g = nn.Sequential(nn.Flatten(), nn.Linear(features, w), nn.ReLU(), nn.Linear(w, features), nn.Tanh())
        d = nn.Sequential(nn.Flatten(), nn.Linear(features, w), nn.LeakyReLU(0.2), nn.Linear(w, 1))
        return {"G": g, "D": d}

    def optimizers(self):
        return {"G": OptimizerSpec(("G",), self.config.lr), "D": OptimizerSpec(("D",), self.config.lr)}

    def phases(self):
        return [Phase("D", "D", self.d_loss, "discriminator"), Phase("G", "G", self.g_loss, "generator")]

    def stage(self, images_seen: int) -> Stage:
        # One stage change (after 16 images): optimizers and DDP wrappers are rebuilt mid-run.
        return Stage(key=int(images_seen >= 16))

    def fake(self, g, images):
        return g(images.flip(-1)).view_as(images)

    def d_loss(self, nets, batch: Batch, ctx):
        return ctx.discriminator_loss(lambda x: nets["D"](x).flatten(), batch.images, self.fake(nets["G"], batch.images))

    def g_loss(self, nets, batch: Batch, ctx):
        return {"loss": ctx.generator_loss(lambda x: nets["D"](x).flatten(), self.fake(nets["G"], batch.images))}

    def sample(self, nets, n, *, generator, condition):
        shape = (n, self.data.channels, self.data.size, self.data.size)
        return self.fake(nets["G"], torch.rand(shape, generator=generator) * 2 - 1)

    def preview(self, nets, *, examples: Batch, stage, generator):
        from ganzoo.images import grid

        return grid(self.fake(nets["G"], examples.images[:4]), nrow=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, world: int, port: int) -> None:
    """The environment torchrun would give this rank; one thread, since the ranks share the cores."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)


def _worker(rank: int, world: int, port: int, train_kwargs: dict, result_dir: str) -> None:
    _join(rank, world, port)
    from ganzoo import registry
    from ganzoo.api import train
    from ganzoo.engine.distributed import shutdown

    registry.register(DecoupledGAN)
    trainer_state = {}
    import ganzoo.engine.trainer as trainer_module

    original_fit = trainer_module.Trainer.fit

    def fit_and_keep(self):  # keep this rank's final weights, which only rank 0 would write
        result = original_fit(self)
        trainer_state.update(
            nets={r: {k: v.clone() for k, v in m.state_dict().items()} for r, m in self.nets.items()},
            ema={r: {k: v.clone() for k, v in e.state_dict().items()} for r, e in self.ema.items()},
            step=self.step,
            images_seen=self.images_seen,
        )
        return result

    trainer_module.Trainer.fit = fit_and_keep
    try:
        train(**train_kwargs)
        torch.save(trainer_state, Path(result_dir) / f"rank{rank}.pt")
    finally:
        shutdown()


def run_ranks(world: int, train_kwargs: dict, result_dir: Path) -> list[dict]:
    """Train with ``world`` gloo processes; returns each rank's final weights."""
    import torch.multiprocessing as mp

    mp.start_processes(
        _worker, args=(world, free_port(), train_kwargs, str(result_dir)), nprocs=world, start_method="spawn"
    )
    return [torch.load(result_dir / f"rank{r}.pt", weights_only=True) for r in range(world)]


class ExplodingOnRankOne(DecoupledGAN):
    """G's loss turns NaN at its third step, on rank 1 only."""

    name = "exploding-on-rank-one"

    def g_loss(self, nets, batch: Batch, ctx):
        terms = super().g_loss(nets, batch, ctx)
        if ctx.step >= 2 and int(os.environ["RANK"]) == 1:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def _nan_worker(rank: int, world: int, port: int, train_kwargs: dict, result_dir: str) -> None:
    _join(rank, world, port)
    from ganzoo import registry
    from ganzoo.api import train
    from ganzoo.engine.distributed import shutdown
    from ganzoo.engine.trainer import NonFiniteLossError

    registry.register(ExplodingOnRankOne)
    try:
        train(**train_kwargs)
    except NonFiniteLossError as err:
        (Path(result_dir) / f"rank{rank}.txt").write_text(str(err))
    finally:
        shutdown()


def run_ranks_expecting_nan(world: int, train_kwargs: dict, result_dir: Path, timeout: float = 120) -> list[str]:
    """Each rank's NonFiniteLossError message; fails instead of hanging if a rank never stops."""
    import time

    import torch.multiprocessing as mp

    context = mp.start_processes(
        _nan_worker, args=(world, free_port(), train_kwargs, str(result_dir)), nprocs=world, start_method="spawn", join=False
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"the ranks did not all stop within {timeout} s")
    return [(result_dir / f"rank{r}.txt").read_text() for r in range(world)]
