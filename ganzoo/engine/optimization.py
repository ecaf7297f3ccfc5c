"""Optimizers, learning-rate schedules, gradient scaling and DDP wrappers for a plugin's roles.

Built from the plugin's ``OptimizerSpec``s, and built again when its stage key changes (Progressive
GAN starts each resolution with fresh Adam state, as the paper does). Gradient scalers are made once
per run: their scale carries across stages. ``step`` is the whole update of one phase: zero the
gradients, backward (scaled for fp16), step, schedule, and weight clipping after a D step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ganzoo.engine.distributed import DistInfo
from ganzoo.engine.options import TrainConfig
from ganzoo.errors import UserError
from ganzoo.plugin import OptimizerSpec, Phase


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: None on the CPU (autocast there only slows float32 models down)."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class Optimization:
    def __init__(self, cfg: TrainConfig, nets: Mapping[str, nn.Module], phases: list[Phase],
                 device: torch.device, dist: DistInfo, find_unused_parameters: bool):
        self.cfg, self.nets, self.device, self.dist = cfg, nets, device, dist
        self.find_unused_parameters = find_unused_parameters
        self.kinds = {phase.optimizer: phase.kind for phase in phases}
        for phase in phases:
            unknown = [role for role in phase.keep_graph if role not in nets]
            if unknown:
                raise UserError(f"phase '{phase.name}' keeps the graph of unknown roles {unknown}: build() makes {sorted(nets)}")
        self.amp_dtype = resolve_amp(cfg.amp, device)
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.specs: dict[str, OptimizerSpec] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.wrapped: dict[str, nn.Module] = {}

    def build(self, specs: Mapping[str, OptimizerSpec]) -> None:
        """(Re)build optimizers, schedules and DDP wrappers from the plugin's current specs."""
        unknown = sorted(set(self.kinds) - set(specs))
        if unknown:
            raise UserError(f"the plugin's phases use optimizer(s) {', '.join(unknown)} that optimizers() does not define")
        self.specs = dict(specs)
        self.optimizers, self.schedulers = {}, {}
        for name, spec in self.specs.items():
            missing = [r for r in spec.roles if r not in self.nets]
            if missing:
                raise UserError(f"optimizer '{name}' names unknown roles {missing}: build() makes {sorted(self.nets)}")
            params = [p for role in spec.roles for p in self.nets[role].parameters()]
            # On CUDA the fused kernel updates every tensor in one launch instead of several per tensor.
            # (Not on the CPU: there it rounds differently from the default Adam that plain loops use.)
            fused = all(p.device.type == "cuda" and p.is_floating_point() for p in params)
            self.optimizers[name] = torch.optim.Adam(
                params, lr=self.learning_rate(name, spec), betas=spec.betas, eps=spec.eps,
                weight_decay=spec.weight_decay, fused=fused or None,
            )
            if spec.lr_lambda is not None:
                self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(self.optimizers[name], spec.lr_lambda)
            if name not in self.scalers:
                self.scalers[name] = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)
        trained = {role for spec in self.specs.values() for role in spec.roles}
        self.wrapped = self.dist.wrap({r: self.nets[r] for r in trained}, self.device, self.find_unused_parameters)

    def learning_rate(self, name: str, spec: OptimizerSpec) -> float:
        """The plugin's lr, or the engine's g_lr/d_lr (two time-scale update rule) for G/D optimizers."""
        override = {"generator": self.cfg.g_lr, "discriminator": self.cfg.d_lr}.get(self.kinds.get(name))
        lr = override or spec.lr
        if not (lr > 0 and lr < float("inf")):
            raise UserError(f"optimizer '{name}' has learning rate {lr}: it must be a positive finite number")
        return lr

    def roles_of(self, phase: Phase) -> tuple[str, ...]:
        return self.specs[phase.optimizer].roles

    def nets_for(self, phase: Phase, keep_graph: tuple[str, ...] | None = None) -> dict[str, nn.Module]:
        """The roles as ``phase`` sees them: gradients and DDP wrappers only for the roles it trains
        and those whose graph it keeps for a later phase (``keep_graph``, by default
        ``phase.keep_graph``; the trainer passes the ones a later phase of this step trains)."""
        live = set(self.roles_of(phase)) | set(phase.keep_graph if keep_graph is None else keep_graph)
        for role, module in self.nets.items():
            module.requires_grad_(role in live)
        return {role: (self.wrapped.get(role, module) if role in live else module) for role, module in self.nets.items()}

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, phase: Phase, loss: torch.Tensor) -> None:
        optimizer, scaler = self.optimizers[phase.optimizer], self.scalers[phase.optimizer]
        optimizer.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if phase.optimizer in self.schedulers:
            self.schedulers[phase.optimizer].step()
        if phase.kind == "discriminator" and self.cfg.clip_weights:
            with torch.no_grad():
                for group in optimizer.param_groups:
                    torch._foreach_clamp_min_(group["params"], -self.cfg.clip_weights)
                    torch._foreach_clamp_max_(group["params"], self.cfg.clip_weights)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore saved state; learning rates stay those of this run's config (a resume may change them)."""
        for name, optimizer in self.optimizers.items():
            current = [group["lr"] for group in optimizer.param_groups]
            optimizer.load_state_dict(state["optimizers"][name])
            for group, lr in zip(optimizer.param_groups, current):
                group["lr"] = lr
        for name, scheduler in self.schedulers.items():
            base_lrs = list(scheduler.base_lrs)
            scheduler.load_state_dict(state["schedulers"][name])
            scheduler.base_lrs = base_lrs
            # The schedule's factor at the saved step, applied to this run's base learning rates.
            for group, base, factor in zip(scheduler.optimizer.param_groups, base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)
        for name, scaler in self.scalers.items():
            if name in state["scalers"]:
                scaler.load_state_dict(state["scalers"][name])
