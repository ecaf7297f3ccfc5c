"""The shared adversarial loop.

A ``Trainer`` is built in four named steps, then runs:

1. data: the dataset the spec names, read the way the plugin takes data, as a device-side batch stream;
2. models: the plugin, its roles on the device (spectral norm, channels-last, compile), EMA copies;
3. optimization: the adversary (loss and stability switches), phases, optimizers, the first stage;
4. state: a new run writes its config; a resumed one loads a checkpoint and records what changed.

``fit`` then repeats one step (``train_step``: one real batch, the due phases in order, EMA) and the
bookkeeping after it (``after_step``: finiteness, logs, samples, checkpoints, the stop vote). Logs,
samples and checkpoints happen only at step boundaries, which is also where Ctrl-C is honoured, so a
checkpoint is always a consistent state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.data.catalog import OpenedData, open_data
from ganzoo.data.imageset import as_model_input
from ganzoo.data.options import DataConfig
from ganzoo.data.sources import BatchStream, center_crop
from ganzoo.data.streamed import make_source
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.adversary import Adversary, EngineStepContext
from ganzoo.engine.bookkeeping import FiniteGuard, LossLog, NonFiniteLossError
from ganzoo.engine.distributed import DistInfo, current
from ganzoo.engine.ema import EMA
from ganzoo.engine.host_memory import keep_freed_memory
from ganzoo.engine.optimization import Optimization
from ganzoo.engine.progress import ProgressDisplay
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.spec import RunSpec
from ganzoo.errors import UserError
from ganzoo.files import DiskFullError
from ganzoo.images import save_png
from ganzoo.plugin import Batch, DataInfo, Phase, Plugin, Stage

__all__ = ["NonFiniteLossError", "TrainResult", "Trainer", "build_roles", "resolve_device"]

EXAMPLES = 16  # real images handed to the plugin once (previews, galleries)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    images_seen: int
    interrupted: bool
    last_checkpoint: Path | None


def resolve_device(name: str, dist: DistInfo) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{dist.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device={name!r} is not supported: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but no CUDA GPU is visible: use device=auto or device=cpu")
    return device


def apply_spectral_norm(module: nn.Module) -> None:
    for child in list(module.modules()):
        if isinstance(child, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(child)


def build_roles(plugin: Plugin, cfg) -> dict[str, nn.Module]:
    """The plugin's roles with the engine's structural switches applied (same for training and loading)."""
    nets = plugin.build()
    if cfg.spectral_norm:
        for role in type(plugin).discriminators:
            if role in nets:
                apply_spectral_norm(nets[role])
    return nets


DATA_HINTS = {
    "vectors": "use a plugin that accepts points (e.g. the example package ganzoo-vanilla-gan) or an image dataset",
    "unpaired": "use an image-to-image plugin such as cyclegan",
    "paired": "use a paired image-to-image plugin such as pix2pix",
}


def check_data_fits(plugin_cls: type[Plugin], plugin: str, data: DataConfig, info: DataInfo | None = None) -> None:
    """Refuse data the plugin does not take (before opening it, and once ``info`` says what it is),
    with a line that says which plugins do."""
    accepts, dataset = plugin_cls.accepts, data.dataset
    if data.dataset_b and not {"unpaired", "paired"} & set(accepts.kinds):
        raise UserError(f"--data-b gives a second domain, but plugin '{plugin}' learns from one dataset "
                        f"(it takes {accepts.describe()}): drop --data-b, or use an image-to-image plugin")
    if info is None:
        return
    if info.kind not in accepts.kinds:
        hint = DATA_HINTS.get(info.kind, "use a dataset of the kind it takes")
        raise UserError(f"{dataset} is {info.kind} data, which plugin '{plugin}' does not take "
                        f"(it takes {accepts.describe()}): {hint}")
    if accepts.labels and not info.num_classes:
        raise UserError(
            f"plugin '{plugin}' needs labelled data but {dataset} has no labels: "
            "use class subfolders, digits, or a labelled torchvision dataset"
        )


class Trainer:
    """Builds everything a run needs from a ``RunSpec`` and runs the loop.

    ``resume_from`` is a checkpoint of the run in ``run_dir``; ``spec`` may differ from the run's
    recorded one only in settings that are safe to change mid-run (see ``api.train``).
    """

    def __init__(self, spec: RunSpec, run_dir: Path, resume_from: Path | None = None):
        self.spec, self.cfg = spec, spec.train
        keep_freed_memory()  # each step reuses the last one's host memory instead of faulting it in anew
        self.run = RunDir(Path(run_dir))
        self.dist = current()
        self.device = resolve_device(self.cfg.device, self.dist)
        wanted = self.cfg.channels_last
        self.channels_last = self.device.type == "cuda" if wanted is None else wanted
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cfg.cudnn_benchmark
        torch.manual_seed(self.cfg.seed)  # the same initial weights on every rank
        opened = self._build_data()
        self._build_models()
        if self.dist.world_size > 1:  # each rank draws its own noise from here on
            torch.manual_seed(self.cfg.seed + 1_000_003 * self.dist.rank)
        self._build_optimization()
        self.examples = self._examples(opened)
        self.guard = FiniteGuard(self.device, self.dist, self._last_checkpoint, self.run.path)
        self._stop_requested = False
        self.tensorboard = self._open_tensorboard()
        if resume_from is not None:
            self._restore(ckpt.load(self.dist.from_main(resume_from)))
            if self.dist.is_main:
                self.run.drop_stats_after(self.step)  # steps after the checkpoint are logged again
        else:
            self.plugin.on_train_start(self.examples)
        if self.dist.is_main:
            with self.disk_full_note():
                self.run.write_config(spec.to_dict(self.data_info))  # on resume: records what changed

    # -- 1. data ----------------------------------------------------------------------------------
    def _build_data(self) -> OpenedData:
        cfg, dist = self.cfg, self.dist
        self.plugin_cls = self.spec.plugin_cls
        check_data_fits(self.plugin_cls, self.spec.plugin, self.spec.data)
        opened = open_data(self.spec.data, self.plugin_cls.accepts, seed=cfg.seed)
        check_data_fits(self.plugin_cls, self.spec.plugin, self.spec.data, opened.info)
        self.data_info: DataInfo = dataclasses.replace(opened.info, batch_size=cfg.batch_size * dist.world_size)
        crop = self.spec.data.size if self.spec.data.load_size else None

        def source(images, seed):
            return make_source(images, self.device, seed, cfg.hflip, dist.rank, dist.world_size, crop,
                               cfg.workers, cfg.batch_size, opened.transform)

        if opened.pairs is not None:  # one source, so A and B of an item stay one pair
            self.stream = BatchStream(source(opened.pairs, cfg.seed), split=opened.info.channels)
        else:
            b = source(opened.b, cfg.seed + 1) if opened.b is not None else None
            self.stream = BatchStream(source(opened.a, cfg.seed), b)
        self.total_steps = cfg.steps
        if cfg.epochs is not None:  # an epoch is max(|A|, |B|) images, as CycleGAN's reference counts it
            self.total_steps = max(1, math.ceil(cfg.epochs * self.stream.epoch_length() / self.images_per_step()))
        return opened

    def images_per_step(self, stage: Stage | None = None) -> int:
        """Real images one step shows, over all processes."""
        per_rank = (stage.batch_size if stage is not None else None) or self.cfg.batch_size
        return per_rank * self.dist.world_size

    def _examples(self, opened: OpenedData) -> Batch:
        """A fixed batch of real images from the run seed: the same on resume."""
        g = torch.Generator().manual_seed(self.cfg.seed)
        count = min(EXAMPLES, len(opened.a))
        size = self.data_info.size
        pick = lambda s, order: as_model_input(center_crop(s.images[order], size)).to(self.device)  # noqa: E731
        order = torch.randperm(len(opened.a), generator=g)[:count]
        examples = Batch(images=pick(opened.a, order))
        if opened.a.labels is not None:
            examples.labels = opened.a.labels[order].to(self.device)
        if opened.b is not None:  # paired data: the same items of B, so that each example is a pair
            order_b = order if opened.pairs is not None else torch.randperm(len(opened.b), generator=g)[:count]
            examples.images_b = pick(opened.b, order_b)
        return examples

    # -- 2. models --------------------------------------------------------------------------------
    def _build_models(self) -> None:
        cfg = self.cfg
        self.plugin: Plugin = self.plugin_cls(self.spec.model, self.data_info)
        self.nets = build_roles(self.plugin, cfg)
        for role, module in self.nets.items():
            module.to(self.device)
            if self.channels_last:
                module.to(memory_format=torch.channels_last)
            if self.dist.world_size > 1 and cfg.sync_batchnorm:
                if self.device.type != "cuda":
                    raise UserError("sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU kernel): set sync_batchnorm=false")
                self.nets[role] = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            if cfg.compile:
                # In place: state_dict keys stay plain, and EMA's deep copies drop the compiled forward.
                self.nets[role].compile()
        self.ema = {
            role: EMA(self.nets[role], cfg.ema_half_life, cfg.ema_rampup)
            for role in self.plugin_cls.generators
            if cfg.ema_half_life > 0 and role in self.nets
        }

    # -- 3. optimization --------------------------------------------------------------------------
    def _build_optimization(self) -> None:
        self.adversary = Adversary(self.cfg, self._make_augmenter(), self.total_steps)
        self.phases: list[Phase] = self.plugin.phases()
        self.step, self.images_seen = 0, 0
        self.stage: Stage = self.plugin.stage(0)
        self.optim = Optimization(self.cfg, self.nets, self.phases, self.device, self.dist,
                                  self.plugin_cls.ddp_find_unused_parameters)
        self.optim.build(self.plugin.optimizers())

    def _make_augmenter(self):
        if not (self.cfg.diffaugment or self.cfg.ada_target):
            return None
        from ganzoo.engine.augment import Augmenter

        return Augmenter(self.cfg.diffaugment, self.cfg.ada_target, self.cfg.ada_kimg, self.cfg.batch_size)

    def _open_tensorboard(self):
        if not self.cfg.tensorboard:
            return None
        from ganzoo.engine.tensorboard import open_logger

        return open_logger(self.run.path / "tensorboard", self.dist.is_main)

    # -- one step ---------------------------------------------------------------------------------
    def due(self, phase: Phase) -> bool:
        every = phase.every * (self.cfg.d_steps if phase.kind == "generator" else 1)
        return self.step % every == 0

    def train_step(self) -> dict[str, torch.Tensor]:
        """One real batch, the due phases in order, EMA; returns every phase's terms (on the device)."""
        stage = self.plugin.stage(self.images_seen)
        if stage.key != self.stage.key:
            self.optim.build(self.plugin.optimizers())
        self.stage = stage  # every step: fields such as a fade-in alpha move within one key
        batch = self.stream.next(stage.batch_size or self.cfg.batch_size, stage.resolution)
        if self.channels_last:
            batch.images = batch.images.contiguous(memory_format=torch.channels_last)
        ctx = EngineStepContext(self.step, self.images_seen, self.device, stage, self.adversary)
        logged: dict[str, torch.Tensor] = {}
        due = [phase for phase in self.phases if self.due(phase)]
        for i, phase in enumerate(due):
            for key, value in self.run_phase(phase, batch, ctx, self.kept_graph(phase, due[i + 1 :])).items():
                logged[f"{phase.name}/{key}"] = value.detach()
        shown = self.images_per_step(stage)
        self.images_seen += shown
        for role, ema in self.ema.items():
            ema.update(self.nets[role], shown, self.images_seen)
        self.step += 1
        return logged

    def kept_graph(self, phase: Phase, later: list[Phase]) -> tuple[str, ...]:
        """The roles of ``phase.keep_graph`` that a phase due later in this step trains."""
        trained_later = {role for p in later for role in self.optim.roles_of(p)}
        return tuple(role for role in phase.keep_graph if role in trained_later)

    def run_phase(self, phase: Phase, batch: Batch, ctx: EngineStepContext,
                  keep_graph: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        nets = self.optim.nets_for(phase, keep_graph)
        if phase.kind == "generator" and self.cfg.unrolled_steps > 0:
            nets = {**nets, **self._unrolled_discriminators(batch, ctx)}
        with self.optim.autocast():
            terms = phase.loss(nets, batch, ctx)
        self.optim.step(phase, terms["loss"])
        return terms

    def _unrolled_discriminators(self, batch: Batch, ctx: EngineStepContext) -> dict[str, nn.Module]:
        """Unrolled GAN: D roles after K simulated, differentiable D updates (see engine/unrolled.py)."""
        from ganzoo.engine.unrolled import unrolled_discriminators

        d_phases = [
            (p, self.optim.optimizers[p.optimizer], self.optim.specs[p.optimizer].roles)
            for p in self.phases
            if p.kind == "discriminator"
        ]
        return unrolled_discriminators(
            self.nets, d_phases, self.cfg.unrolled_steps, batch, ctx, self.cfg.clip_weights, self.optim.autocast
        )

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        result = self._fit()
        if self.dist.is_main:
            self.plugin.on_train_end(self.run.path)
        return result

    def _fit(self) -> TrainResult:
        if self.step >= self.total_steps:
            return self._result(interrupted=False)
        self.losses = LossLog(self.device, self.dist)
        self.display = ProgressDisplay(self.total_steps, self.step, enabled=self.cfg.progress and self.dist.is_main)
        with self.display, self._sigint_guard(), self.tensorboard or contextlib.nullcontext():
            while self.step < self.total_steps:
                if self.after_step(self.train_step()):
                    return self._result(interrupted=True)
        return self._result(interrupted=False)

    def after_step(self, terms: Mapping[str, torch.Tensor]) -> bool:
        """Bookkeeping after a step: check, log, sample, checkpoint; True when asked to stop."""
        cfg, step = self.cfg, self.step
        self.losses.add(terms, self.images_per_step(self.stage))
        self.guard.add(step, terms)
        last = step == self.total_steps
        due_log = step % cfg.log_every == 0 or last
        due_sample = step % cfg.sample_every == 0 or last
        due_checkpoint = step % cfg.checkpoint_every == 0 or last
        if self.guard.every_step or due_log or due_sample or due_checkpoint:
            self.guard.check()  # before anything is logged or written
        if due_sample or due_checkpoint:
            self.guard.check_weights(self.step, self.nets, self.ema, self.optim.optimizers)
        with self.disk_full_note():
            if due_log:
                self.write_log()
            else:
                self.display.advance(step)
            if due_sample:
                self.write_samples()
            if due_checkpoint:
                self.save_checkpoint()
            # Several ranks agree through an all-reduce, a wait for every GPU: once per log interval.
            may_stop = self.dist.world_size == 1 or due_log
            if may_stop and self.dist.any_rank(self._stop_requested, self.device):  # all ranks stop at one step
                self.guard.check()
                if not due_checkpoint:
                    self.guard.check_weights(self.step, self.nets, self.ema, self.optim.optimizers)
                    self.save_checkpoint()
                return True
        return False

    @contextlib.contextmanager
    def disk_full_note(self) -> Iterator[None]:
        """A full disk stops training with one line that also names the last good checkpoint."""
        try:
            yield
        except DiskFullError as err:
            last = self._last_checkpoint()
            raise err.with_note(f"the last good checkpoint is {last}" if last else "no checkpoint was written yet") from err

    def write_log(self) -> None:
        record = self.losses.record(**{f"stage/{k}": v for k, v in self.stage.info().items()})
        record = {"step": self.step, "images_seen": self.images_seen, **record}
        if self.dist.is_main:
            self.run.append_stats(record)
            if self.tensorboard is not None:
                self.tensorboard.log_stats(record)
        self.display.update(self.step, record)

    def _result(self, interrupted: bool) -> TrainResult:
        return TrainResult(self.run.path, self.step, self.images_seen, interrupted, self._last_checkpoint())

    @contextlib.contextmanager
    def _sigint_guard(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            if self._stop_requested:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self._stop_requested = True

        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # -- samples ----------------------------------------------------------------------------------
    def inference_nets(self) -> dict[str, nn.Module]:
        """EMA generators where kept; other roles as trained."""
        return {role: (self.ema[role].module if role in self.ema else module) for role, module in self.nets.items()}

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        if not self.dist.is_main:
            return None
        nets = self.inference_nets()
        modes = {role: m.training for role, m in nets.items()}
        for m in nets.values():
            m.eval()
        try:
            generator = torch.Generator().manual_seed(self.cfg.seed)
            image = self.plugin.preview(nets, examples=self.examples, stage=self.stage, generator=generator)
        finally:
            for role, m in nets.items():
                m.train(modes[role])
        if self.tensorboard is not None:
            self.tensorboard.log_image("samples", image, self.step)
        return save_png(image, self.run.samples / f"step-{self.step:08d}.png")

    # -- checkpoints ------------------------------------------------------------------------------
    def _last_checkpoint(self) -> Path | None:
        found = ckpt.list_checkpoints(self.run.checkpoints)
        return found[-1] if found else None

    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.dist.world_size > 1:  # each rank's own noise, so a resumed job draws what it would have
            rng["ranks"] = self.dist.gather(dict(rng))
        return {
            "format": 1,
            "plugin": self.spec.plugin,
            "plugin_provider": self.spec.record.package,
            "plugin_version": self.plugin_cls.version,
            "config": self.spec.to_dict(self.data_info),
            "step": self.step,
            "images_seen": self.images_seen,
            "stage_key": self.stage.key,
            "nets": {role: m.state_dict() for role, m in self.nets.items()},
            "ema": {role: e.state_dict() for role, e in self.ema.items()},
            **self.optim.state_dict(),
            "adversary": self.adversary.state_dict(),
            "data": self.stream.state_dict(),
            "plugin_state": self.plugin.state_dict(),
            "rng": rng,
        }

    def save_checkpoint(self) -> Path | None:
        state = self.state_dict()  # every rank builds it (it gathers the ranks' RNG states)
        if not self.dist.is_main:
            return None
        path = ckpt.checkpoint_path(self.run.checkpoints, self.step)
        ckpt.save_atomic(state, path)
        ckpt.prune(self.run.checkpoints, self.cfg.keep_checkpoints)
        return path

    def _restore(self, state: Mapping[str, Any]) -> None:
        if state.get("plugin") != self.spec.plugin:
            raise UserError(f"checkpoint is for plugin '{state.get('plugin')}', not '{self.spec.plugin}'")
        self.step, self.images_seen = state["step"], state["images_seen"]
        for role, module in self.nets.items():
            module.load_state_dict(state["nets"][role])
        for role, ema in self.ema.items():
            ema.load_state_dict(state["ema"][role])
        self.stage = self.plugin.stage(self.images_seen)
        self.optim.build(self.plugin.optimizers())
        self.optim.load_state_dict(state)
        # A checkpoint written by the step that crossed into a new stage holds the old stage's
        # optimizer state: keep the old key so the next step rebuilds, as the straight run does.
        self.stage = dataclasses.replace(self.stage, key=state.get("stage_key", self.stage.key))
        self.adversary.load_state_dict(state["adversary"])
        self.stream.load_state_dict(state["data"])
        self.plugin.load_state_dict(state["plugin_state"])
        rng = state["rng"]
        if self.dist.world_size > 1:
            ranks = rng.get("ranks") or []
            rng = ranks[self.dist.rank] if len(ranks) == self.dist.world_size else None
        if rng is None:  # saved by a job of another size: fresh noise per rank
            torch.manual_seed(self.cfg.seed + 1_000_003 * self.dist.rank + self.step)
            return
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
