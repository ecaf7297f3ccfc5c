"""Everything a plugin author imports: the contract and the two base classes built on it.

    from ganzoo.plugin import Accepts, Batch, LatentGAN, OptimizerSpec, Phase, Plugin, TranslationGAN

See ``ganzoo.plugin.contract`` for the contract itself and docs/plugins.md for a walkthrough.
"""

from ganzoo.plugin.contract import (
    DATA_KINDS,
    Accepts,
    Batch,
    DataInfo,
    DataKind,
    ExportSpec,
    LossFn,
    Nets,
    NoConfig,
    OptimizerSpec,
    Phase,
    Plugin,
    Stage,
    StepContext,
    device_of,
    gaussian_latents,
    missing_methods,
)
from ganzoo.plugin.latent import LatentGAN
from ganzoo.plugin.translation import TranslationGAN

__all__ = [
    "DATA_KINDS",
    "Accepts",
    "Batch",
    "DataInfo",
    "DataKind",
    "ExportSpec",
    "LatentGAN",
    "LossFn",
    "Nets",
    "NoConfig",
    "OptimizerSpec",
    "Phase",
    "Plugin",
    "Stage",
    "StepContext",
    "TranslationGAN",
    "device_of",
    "gaussian_latents",
    "missing_methods",
]
