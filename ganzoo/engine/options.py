"""The engine's settings, shared by every plugin (``--set key=value`` reaches them by name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainConfig:
    # -- length and batch --------------------------------------------------------------------
    steps: int = 2000  # engine iterations; each draws one real batch
    epochs: float | None = None  # length in passes over the data; overrides steps when set
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1"
    # -- adversarial objective -----------------------------------------------------------------
    loss: Literal["minimax", "nonsaturating", "lsgan", "hinge", "wgan", "wgan-gp"] = "nonsaturating"
    d_steps: int = 1  # discriminator steps per generator step (each on a fresh real batch)
    g_lr: float | None = None  # two time-scale update rule: overrides the plugin's G learning rate
    d_lr: float | None = None  # ... and D's
    # -- regularizers and stability switches (see docs/engine.md) ------------------------------
    gp_weight: float | None = None  # WGAN-GP lambda; None: 10 with loss=wgan-gp, else off
    r1_gamma: float = 0.0  # R1 penalty on reals (Mescheder et al. 2018); 0 is off
    r1_interval: int = 16  # lazy regularization: R1 every N D steps, scaled by N
    drift: float = 0.0  # epsilon-drift on real logits (ProGAN uses 0.001)
    clip_weights: float = 0.0  # original WGAN weight clipping of D parameters; 0 is off
    spectral_norm: bool = False  # spectral normalization of every conv/linear layer in D
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (minimax, nonsaturating, lsgan)
    instance_noise: float = 0.0  # std of Gaussian noise on D inputs, annealed linearly to 0
    instance_noise_steps: int | None = None  # anneal length; None: the whole run
    diffaugment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"
    ada_target: float = 0.0  # adaptive augmentation probability target for sign(D(real)); 0 off
    ada_kimg: float = 100.0  # images (in thousands) for p to move from 0 to 1
    unrolled_steps: int = 0  # unrolled GAN: G loss against D after K simulated updates
    # -- generator averaging -----------------------------------------------------------------
    ema_half_life: float = 10_000.0  # images; 0 disables EMA (samples then use G itself)
    ema_rampup: float | None = 0.05  # half-life <= images_seen * rampup early in training
    # -- speed -------------------------------------------------------------------------------
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA when supported
    channels_last: bool = True  # CUDA only
    compile: bool = False  # torch.compile every role in place; the first steps wait for the compiler
    cudnn_benchmark: bool = True
    sync_batchnorm: bool = False  # multi-GPU: BatchNorm statistics across ranks
    workers: int | None = None  # DataLoader workers for streamed folders; None: half the cores per rank, 1 to 8
    hflip: bool = False  # random horizontal flips of real images
    # -- run bookkeeping ---------------------------------------------------------------------
    log_every: int = 25
    sample_every: int = 250
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    progress: bool = True
    tensorboard: bool = False  # also log stats and preview grids to RUN/tensorboard (needs tensorboard)
