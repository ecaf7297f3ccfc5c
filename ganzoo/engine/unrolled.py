"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein, "Unrolled Generative Adversarial Networks", ICLR 2017).

Before a generator step, the discriminator phases are simulated K times as differentiable functions
of the generator: each simulated step is the real optimizer's Adam update (same state, learning rate,
betas, weight decay, clipping), written functionally and built with ``create_graph``. The generator
phase then sees D with the K-step-ahead parameters, and backpropagation runs through the K updates:
G's gradient has both terms of Metz et al.'s eq. 12, the second being how D would react to G.

Nothing real changes: D's parameters, its optimizer state, its buffers (BatchNorm statistics,
spectral-norm vectors) and the adversary's counters are as before. For G to reach the D updates, a
plugin's D loss must take its fakes from G without detaching them itself; the engine only detaches
them outside unrolling.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ganzoo.engine.adversary import EngineStepContext
from ganzoo.plugin import Batch, Phase


class FunctionalRole(nn.Module):
    """A role called with substituted parameters (tensors that depend on G)."""

    def __init__(self, module: nn.Module, params: dict[str, Tensor]):
        super().__init__()
        self.module = module
        self.params = params

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self.module, self.params, args, kwargs)


def adam_update(
    param: Tensor, grad: Tensor, state: Mapping[str, Any], group: Mapping[str, Any]
) -> tuple[Tensor, dict[str, Any]]:
    """torch.optim.Adam's step as a differentiable function; returns the new parameter and state."""
    beta1, beta2 = group["betas"]
    if group["weight_decay"]:
        grad = grad + group["weight_decay"] * param
    step = float(state.get("step", 0)) + 1
    exp_avg = state.get("exp_avg", torch.zeros_like(param))
    exp_avg_sq = state.get("exp_avg_sq", torch.zeros_like(param))
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    # clamp: d sqrt(v)/dv is infinite at v = 0 (a parameter without gradient); the value stays Adam's
    denom = exp_avg_sq.clamp_min(1e-30).sqrt() / math.sqrt(1 - beta2**step) + group["eps"]
    new = param - group["lr"] / (1 - beta1**step) * exp_avg / denom
    return new, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def unrolled_discriminators(
    nets: Mapping[str, nn.Module],
    d_phases: list[tuple[Phase, torch.optim.Optimizer, tuple[str, ...]]],
    steps: int,
    batch: Batch,
    ctx: EngineStepContext,
    clip_weights: float,
    autocast: Callable[[], Any],
) -> dict[str, nn.Module]:
    """The D roles after ``steps`` simulated rounds of the D phases, as ``FunctionalRole``s."""
    roles = {role for _, _, phase_roles in d_phases for role in phase_roles}
    params = {
        role: {name: p.detach().requires_grad_() for name, p in nets[role].named_parameters()}
        for role in roles
    }
    saved_buffers = {role: [b.clone() for b in nets[role].buffers()] for role in roles}
    saved_adversary = ctx.adversary.state_dict()
    # Simulated D losses must not leave their fakes where the real G phase looks for the step's own.
    ctx = dataclasses.replace(ctx, cache={})
    # the real optimizer's state, looked up by parameter; simulated steps continue from it
    slots = {}
    for _, optimizer, phase_roles in d_phases:
        by_id = {id(p): (role, name) for role in phase_roles for name, p in nets[role].named_parameters()}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) in by_id:
                    slots[by_id[id(p)]] = (group, dict(optimizer.state.get(p, {})))
    try:
        for _ in range(steps):
            for phase, _, phase_roles in d_phases:
                current = {**nets, **{r: FunctionalRole(nets[r], params[r]) for r in roles}}
                with autocast(), ctx.adversary.differentiable_fakes():
                    loss = phase.loss(current, batch, ctx)["loss"]
                keys = [(r, n) for r in phase_roles for n in params[r] if (r, n) in slots]
                grads = torch.autograd.grad(
                    loss, [params[r][n] for r, n in keys], create_graph=True, allow_unused=True
                )
                for (role, name), grad in zip(keys, grads):
                    group, state = slots[(role, name)]
                    param = params[role][name]
                    grad = torch.zeros_like(param) if grad is None else grad
                    new, state = adam_update(param, grad, state, group)
                    params[role][name] = new.clamp(-clip_weights, clip_weights) if clip_weights else new
                    slots[(role, name)] = (group, state)
    finally:
        with torch.no_grad():
            for role in roles:
                for buffer, saved in zip(nets[role].buffers(), saved_buffers[role]):
                    buffer.copy_(saved)
        ctx.adversary.load_state_dict(saved_adversary)
    return {role: FunctionalRole(nets[role], params[role]) for role in roles}
