"""The shared adversarial loop.

One iteration draws one real batch, then runs the plugin's phases in order. For each phase the
engine enables gradients only for the roles its optimizer updates, runs the plugin's loss function
under autocast, and does backward, the optimizer and schedule step and the switches that follow a
step (weight clipping). After the phases, EMA copies of the generators are updated. Progress is
counted in steps and in images shown; logging, samples and checkpoints happen at step boundaries,
which is also where Ctrl-C is honoured, so a checkpoint is always a consistent state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.data.catalog import open_data
from ganzoo.data.imageset import as_model_input
from ganzoo.data.sources import BatchStream, center_crop
from ganzoo.data.streamed import make_source
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.adversary import Adversary, StepContext
from ganzoo.engine.distributed import DistInfo, current
from ganzoo.engine.ema import EMA
from ganzoo.engine.progress import ProgressDisplay
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.spec import RunSpec
from ganzoo.errors import UserError
from ganzoo.images import save_png
from ganzoo.plugin import Batch, DataInfo, Phase, Plugin, Stage

RESUMABLE_CHANGES = {"steps", "epochs", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "progress", "device", "workers", "tensorboard"}


class NonFiniteLossError(UserError):
    pass


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
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but no CUDA GPU is visible: use device=auto or device=cpu")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


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


class Trainer:
    """Builds everything a run needs from a ``RunSpec`` and runs the loop."""

    def __init__(self, spec: RunSpec, run_dir: Path, resume: bool = False):
        self.spec, self.cfg = spec, spec.train
        self.run = RunDir(Path(run_dir))
        self.dist = current()
        self.device = resolve_device(self.cfg.device, self.dist)
        self.amp_dtype = resolve_amp(self.cfg.amp, self.device)
        # Checking losses reads them on the host: free on the CPU, a wait for the GPU on CUDA (see _check_finite).
        self.check_finite_every_step = self.device.type != "cuda"
        self.plugin_cls = spec.plugin_cls
        torch.manual_seed(self.cfg.seed)  # the same initial weights on every rank
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cfg.cudnn_benchmark

        data = open_data(spec.data, self.plugin_cls.data_kind, seed=self.cfg.seed)
        if self.plugin_cls.needs_labels and data.a.labels is None:
            raise UserError(
                f"plugin '{spec.plugin}' needs labelled data but {spec.data.dataset} has no labels: "
                "use class subfolders, digits, or a labelled torchvision dataset"
            )
        if data.info.kind == "vectors" and not self.plugin_cls.accepts_vectors:
            raise UserError(
                f"{spec.data.dataset} holds {data.info.channels}-D points, which plugin '{spec.plugin}' "
                "cannot model: use a plugin that accepts points (e.g. the example package "
                "ganzoo-vanilla-gan) or an image dataset"
            )
        self.data_info: DataInfo = dataclasses.replace(
            data.info, batch_size=self.cfg.batch_size * self.dist.world_size
        )
        crop = spec.data.size if spec.data.load_size else None
        source = lambda s, seed: make_source(  # noqa: E731
            s, self.device, seed, self.cfg.hflip, self.dist.rank, self.dist.world_size, crop, self.cfg.workers,
            self.cfg.batch_size,
        )
        self.stream = BatchStream(
            source(data.a, self.cfg.seed), source(data.b, self.cfg.seed + 1) if data.b is not None else None
        )
        if self.cfg.epochs is not None:  # an epoch is max(|A|, |B|) images, as CycleGAN's reference counts it
            per_step = self.cfg.batch_size * self.dist.world_size
            self.cfg.steps = max(1, math.ceil(self.cfg.epochs * self.stream.epoch_length() / per_step))
        self.plugin: Plugin = self.plugin_cls(spec.model, self.data_info)
        self.nets = self._build_nets()
        self.ema = {
            role: EMA(self.nets[role], self.cfg.ema_half_life, self.cfg.ema_rampup)
            for role in self.plugin_cls.generators
            if self.cfg.ema_half_life > 0
        }
        if self.dist.world_size > 1:  # each rank draws its own noise from here on
            torch.manual_seed(self.cfg.seed + 1_000_003 * self.dist.rank)
        self.adversary = Adversary(self.cfg, self._make_augmenter())
        self.phases: list[Phase] = self.plugin.phases()
        self.step, self.images_seen = 0, 0
        self.stage: Stage = self.plugin.stage(0)
        self._build_optimizers()
        self.preview_inputs = self._make_preview_inputs(data)
        self._stop_requested = False
        self.tensorboard = self._open_tensorboard()
        if resume:
            self._restore(ckpt.load(self.dist.from_main(ckpt.latest(self.run.checkpoints))))
        elif self.dist.is_main:
            self.run.write_config(spec.to_dict(self.data_info))

    # -- construction -------------------------------------------------------------------------
    def _build_nets(self) -> dict[str, nn.Module]:
        nets = build_roles(self.plugin, self.cfg)
        for role, module in nets.items():
            module.to(self.device)
            if self.device.type == "cuda" and self.cfg.channels_last:
                module.to(memory_format=torch.channels_last)
            if self.dist.world_size > 1 and self.cfg.sync_batchnorm:
                if self.device.type != "cuda":
                    raise UserError("sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU kernel): set sync_batchnorm=false")
                nets[role] = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            if self.cfg.compile:
                # In place: state_dict keys stay plain, and EMA's deep copies drop the compiled forward.
                nets[role].compile()
        return nets

    def _open_tensorboard(self):
        if not self.cfg.tensorboard:
            return None
        from ganzoo.engine.tensorboard import open_logger

        return open_logger(self.run.path / "tensorboard", self.dist.is_main)

    def _make_augmenter(self):
        if not (self.cfg.diffaugment or self.cfg.ada_target):
            return None
        from ganzoo.engine.augment import Augmenter

        return Augmenter(self.cfg.diffaugment, self.cfg.ada_target, self.cfg.ada_kimg, self.cfg.batch_size)

    def _trained_roles(self) -> set[str]:
        return {role for spec in self.optimizer_specs.values() for role in spec.roles}

    def _build_optimizers(self) -> None:
        """(Re)build optimizers, schedules and DDP wrappers; called again when the stage changes."""
        self.optimizer_specs = self.plugin.optimizers()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        kinds = {phase.optimizer: phase.kind for phase in self.phases}
        for name, spec in self.optimizer_specs.items():
            missing = [r for r in spec.roles if r not in self.nets]
            if missing:
                raise ValueError(f"optimizer '{name}' names unknown roles {missing}")
            lr = {"generator": self.cfg.g_lr, "discriminator": self.cfg.d_lr}.get(kinds.get(name)) or spec.lr
            params = [p for role in spec.roles for p in self.nets[role].parameters()]
            # On CUDA the fused kernel updates every tensor in one launch instead of several per tensor.
            # (Not on the CPU: there it rounds differently from the default Adam that plain loops use.)
            fused = all(p.device.type == "cuda" and p.is_floating_point() for p in params)
            self.optimizers[name] = torch.optim.Adam(
                params, lr=lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay, fused=fused or None
            )
            if spec.lr_lambda is not None:
                self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(self.optimizers[name], spec.lr_lambda)
        if not hasattr(self, "scalers"):
            fp16 = self.amp_dtype is torch.float16
            self.scalers = {name: torch.amp.GradScaler("cuda", enabled=fp16) for name in self.optimizer_specs}
        self.wrapped = self.dist.wrap(
            {role: self.nets[role] for role in self._trained_roles()}, self.device,
            find_unused=getattr(self.plugin_cls, "ddp_find_unused_parameters", False),
        )

    def _make_preview_inputs(self, data) -> Any:
        g = torch.Generator().manual_seed(self.cfg.seed)
        count = min(16, len(data.a))
        size = self.data_info.size
        pick = lambda s: center_crop(s.images[torch.randperm(len(s), generator=g)[:count]], size)  # noqa: E731
        sample = Batch(
            images=as_model_input(pick(data.a)).to(self.device),
            labels=data.a.labels[:count].to(self.device) if data.a.labels is not None else None,
            images_b=as_model_input(pick(data.b)).to(self.device) if data.b is not None else None,
        )
        return self.plugin.preview_inputs(g, sample)

    # -- the loop -----------------------------------------------------------------------------
    def nets_for(self, phase: Phase) -> dict[str, nn.Module]:
        roles = set(self.optimizer_specs[phase.optimizer].roles)
        for role, module in self.nets.items():
            module.requires_grad_(role in roles)
        return {role: (self.wrapped[role] if role in roles else module) for role, module in self.nets.items()}

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _due(self, phase: Phase) -> bool:
        every = phase.every * (self.cfg.d_steps if phase.kind == "generator" else 1)
        return self.step % every == 0

    def run_phase(self, phase: Phase, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        nets = self.nets_for(phase)
        if phase.kind == "generator" and self.cfg.unrolled_steps > 0:
            nets = {**nets, **self._unrolled_discriminators(batch, ctx)}
        with self._autocast():
            terms = phase.loss(nets, batch, ctx)
        loss = terms["loss"]
        optimizer, scaler = self.optimizers[phase.optimizer], self.scalers[phase.optimizer]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if phase.optimizer in self.schedulers:
            self.schedulers[phase.optimizer].step()
        if phase.kind == "discriminator" and self.cfg.clip_weights:
            with torch.no_grad():
                for group in optimizer.param_groups:
                    torch._foreach_clamp_min_(group["params"], -self.cfg.clip_weights)
                    torch._foreach_clamp_max_(group["params"], self.cfg.clip_weights)
        return terms

    def _unrolled_discriminators(self, batch: Batch, ctx: StepContext) -> dict[str, nn.Module]:
        """Unrolled GAN: D roles after K simulated, differentiable D updates (see engine/unrolled.py)."""
        from ganzoo.engine.unrolled import unrolled_discriminators

        d_phases = [
            (p, self.optimizers[p.optimizer], self.optimizer_specs[p.optimizer].roles)
            for p in self.phases
            if p.kind == "discriminator"
        ]
        return unrolled_discriminators(
            self.nets, d_phases, self.cfg.unrolled_steps, batch, ctx, self.cfg.clip_weights, self._autocast
        )

    def train_step(self) -> dict[str, torch.Tensor]:
        stage = self.plugin.stage(self.images_seen)
        key_changed = stage.key != self.stage.key
        self.stage = stage  # every step: its info (e.g. a fade-in alpha) moves within one key
        if key_changed:
            self._build_optimizers()
        batch_size = stage.batch_size or self.cfg.batch_size
        batch = self.stream.next(batch_size, stage.resolution)
        if self.device.type == "cuda" and self.cfg.channels_last:
            batch.images = batch.images.contiguous(memory_format=torch.channels_last)
        ctx = StepContext(self.step, self.images_seen, self.device, stage, self.adversary)
        logged: dict[str, torch.Tensor] = {}
        for phase in self.phases:
            if not self._due(phase):
                continue
            terms = self.run_phase(phase, batch, ctx)
            for key, value in terms.items():
                logged[f"{phase.name}/{key}"] = value.detach()
        shown = batch_size * self.dist.world_size
        self.images_seen += shown
        for role, ema in self.ema.items():
            ema.update(self.nets[role], shown, self.images_seen)
        self.step += 1
        return logged

    def fit(self) -> TrainResult:
        result = self._fit()
        if self.dist.is_main:
            self.plugin.on_train_end(self.run.path)
        return result

    def _fit(self) -> TrainResult:
        total = self.cfg.steps
        if self.step >= total:
            return TrainResult(self.run.path, self.step, self.images_seen, False, self._last_ckpt())
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        count, interval_start, interval_images = 0, time.perf_counter(), 0
        unchecked: list[tuple[int, dict[str, torch.Tensor]]] = []  # (step, losses) not yet checked finite
        display = ProgressDisplay(total, self.step, enabled=self.cfg.progress and self.dist.is_main)
        with display, self._sigint_guard(), self.tensorboard or contextlib.nullcontext():
            while self.step < total:
                logged = self.train_step()
                count += 1
                interval_images += (self.stage.batch_size or self.cfg.batch_size) * self.dist.world_size
                unchecked.append((self.step, logged))
                for key, value in logged.items():
                    sums[key] += value.float()
                due_log = self.step % self.cfg.log_every == 0 or self.step == total
                due_sample = self.step % self.cfg.sample_every == 0 or self.step == total
                due_checkpoint = self.step % self.cfg.checkpoint_every == 0 or self.step == total
                if self.check_finite_every_step or due_log or due_sample or due_checkpoint:
                    self._check_finite(unchecked)  # before anything is logged or written
                if due_log:
                    elapsed = time.perf_counter() - interval_start
                    record = {k: round(float(v) / count, 6) for k, v in self.dist.average(sums).items()}
                    record.update(self._stage_record())
                    record.update(step=self.step, images_seen=self.images_seen,
                                  images_per_sec=round(interval_images / max(elapsed, 1e-9), 2), time=time.time())
                    if self.dist.is_main:
                        self.run.append_stats(record)
                        if self.tensorboard is not None:
                            self.tensorboard.log_stats(record)
                    display.update(self.step, record)
                    sums.clear()
                    count, interval_start, interval_images = 0, time.perf_counter(), 0
                else:
                    display.advance(self.step)
                if due_sample:
                    self.write_samples()
                if due_checkpoint:
                    self.save_checkpoint()
                # Several ranks agree through an all-reduce, a wait for every GPU: once per log interval.
                may_stop = self.dist.world_size == 1 or due_log
                if may_stop and self.dist.any_rank(self._stop_requested, self.device):  # all ranks stop at one step
                    self._check_finite(unchecked)
                    self.save_checkpoint()
                    return TrainResult(self.run.path, self.step, self.images_seen, True, self._last_ckpt())
        return TrainResult(self.run.path, self.step, self.images_seen, False, self._last_ckpt())

    def _stage_record(self) -> dict[str, float]:
        return {f"stage/{k}": v for k, v in self.stage.info.items()}

    def _check_finite(self, unchecked: list[tuple[int, dict[str, torch.Tensor]]]) -> None:
        """Stop at the first step whose losses are NaN or infinite; one device sync for all of them.

        On the CPU this runs every step. On CUDA reading a loss waits for the GPU to finish it, so
        the losses wait on the device until the next log, sample or checkpoint, which therefore
        never records a non-finite state; the error still names the first bad step.
        """
        if not unchecked:
            return
        totals = torch.stack([
            sum((v.float() for k, v in logged.items() if k.endswith("/loss")), torch.zeros((), device=self.device))
            for _, logged in unchecked
        ])
        finite = torch.isfinite(totals)
        bad_here = not bool(finite.all())
        # Every rank stops together: a rank that stopped alone would leave the others waiting.
        if self.dist.any_rank(bad_here, self.device):
            if bad_here:
                step, logged = unchecked[int((~finite).nonzero()[0])]
                self._fail_non_finite(logged, step)
            self._fail_non_finite({}, unchecked[-1][0], in_another_process=True)
        unchecked.clear()

    def _fail_non_finite(self, logged: Mapping[str, torch.Tensor], step: int, in_another_process: bool = False) -> None:
        bad = [k for k, v in logged.items() if not bool(torch.isfinite(v).all())]
        what = "a loss of another process" if in_another_process else ", ".join(bad)
        when = f"by step {step}" if in_another_process else f"at step {step}"
        last = self._last_ckpt()
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise NonFiniteLossError(
            f"training stopped: {what} became NaN or infinite {when}; {where}. "
            "Lower the learning rate or change the loss, then resume"
        )

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

    # -- inference views ------------------------------------------------------------------------
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
            image = self.plugin.preview(nets, self.preview_inputs, self.images_seen)
        finally:
            for role, m in nets.items():
                m.train(modes[role])
        if self.tensorboard is not None:
            self.tensorboard.log_image("samples", image, self.step)
        return save_png(image, self.run.samples / f"step-{self.step:08d}.png")

    # -- checkpoints ----------------------------------------------------------------------------
    def _last_ckpt(self) -> Path | None:
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
            "plugin_version": self.plugin_cls.version,
            "config": self.spec.to_dict(self.data_info),
            "step": self.step,
            "images_seen": self.images_seen,
            "stage_key": self.stage.key,
            "nets": {role: m.state_dict() for role, m in self.nets.items()},
            "ema": {role: e.state_dict() for role, e in self.ema.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
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
        self._build_optimizers()
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        for name, scaler in self.scalers.items():
            scaler.load_state_dict(state["scalers"][name])
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


def check_resume_overrides(saved: RunSpec, requested: dict[str, Any]) -> None:
    changed = [k.rpartition(".")[2] for k, v in requested.items() if v is not None]
    frozen = sorted(set(changed) - RESUMABLE_CHANGES)
    if frozen:
        raise UserError(
            f"cannot change {', '.join(frozen)} when resuming: a resumed run keeps its config "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change); start a new run instead"
        )
