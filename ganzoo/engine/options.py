"""The engine's settings, shared by every plugin (``--set key=value`` reaches them by name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ganzoo.config import setting


@dataclass
class TrainConfig:
    # -- length and batch --------------------------------------------------------------------
    steps: int = setting(2000, ge=1)  # engine iterations; each draws one real batch
    epochs: float | None = setting(None, gt=0)  # length in passes over the data; overrides steps when set
    batch_size: int = setting(64, ge=1)
    seed: int = setting(0, ge=0)
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1"
    # -- adversarial objective -----------------------------------------------------------------
    loss: Literal["minimax", "nonsaturating", "lsgan", "hinge", "wgan", "wgan-gp"] = "nonsaturating"
    d_steps: int = setting(1, ge=1)  # discriminator steps per generator step (each on a fresh real batch)
    g_lr: float | None = setting(None, gt=0)  # two time-scale update rule: overrides the plugin's G learning rate
    d_lr: float | None = setting(None, gt=0)  # ... and D's
    # -- regularizers and stability switches (see docs/engine.md) ------------------------------
    gp_weight: float | None = setting(None, ge=0)  # WGAN-GP lambda; None: 10 with loss=wgan-gp, else off
    r1_gamma: float = setting(0.0, ge=0)  # R1 penalty on reals (Mescheder et al. 2018); 0 is off
    r1_interval: int = setting(16, ge=1)  # lazy regularization: R1 every N D steps, scaled by N
    drift: float = setting(0.0, ge=0)  # epsilon-drift on real logits (ProGAN uses 0.001)
    clip_weights: float = setting(0.0, ge=0)  # original WGAN weight clipping of D parameters; 0 is off
    spectral_norm: bool = False  # spectral normalization of every conv/linear layer in D
    label_smoothing: float = setting(0.0, ge=0, lt=1)  # one-sided: real target 1 - s (minimax, nonsaturating, lsgan)
    instance_noise: float = setting(0.0, ge=0)  # std of Gaussian noise on D inputs, annealed linearly to 0
    instance_noise_steps: int | None = setting(None, ge=1)  # anneal length; None: the whole run
    diffaugment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"
    ada_target: float = setting(0.0, ge=0, lt=1)  # adaptive augmentation probability target for sign(D(real)); 0 off
    ada_kimg: float = setting(100.0, gt=0)  # images (in thousands) for p to move from 0 to 1
    unrolled_steps: int = setting(0, ge=0)  # unrolled GAN: G loss against D after K simulated updates
    # -- generator averaging -----------------------------------------------------------------
    ema_half_life: float = setting(10_000.0, ge=0)  # images; 0 disables EMA (samples then use G itself)
    ema_rampup: float | None = setting(0.05, gt=0)  # half-life <= images_seen * rampup early in training
    # -- speed -------------------------------------------------------------------------------
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA when supported
    # None: on CUDA only. True also on the CPU, where it speeds up DCGAN-sized convolutions (1.1-1.3x)
    # but slows some others (pix2pix's U-Net about 0.93x), so CPU presets opt in per plugin.
    channels_last: bool | None = None
    compile: bool = False  # torch.compile every role in place; the first steps wait for the compiler
    cudnn_benchmark: bool = True
    sync_batchnorm: bool = False  # multi-GPU: BatchNorm statistics across ranks
    workers: int | None = setting(None, ge=0)  # DataLoader workers for streamed folders; None: half the cores per rank, 1 to 8
    hflip: bool = False  # random horizontal flips of real images
    # -- run bookkeeping ---------------------------------------------------------------------
    log_every: int = setting(25, ge=1)
    sample_every: int = setting(250, ge=1)
    checkpoint_every: int = setting(500, ge=1)
    keep_checkpoints: int = setting(3, ge=0)  # 0 keeps every checkpoint
    progress: bool = True
    tensorboard: bool = False  # also log stats and preview grids to RUN/tensorboard (needs tensorboard)
