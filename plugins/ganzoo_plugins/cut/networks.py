"""CUT's networks: CycleGAN's ResNet generator, which also hands out its encoder features, and F,
the MLP heads that turn sampled feature-map locations into the unit vectors PatchNCE compares.

Layer for layer as in taesungp/contrastive-unpaired-translation (models/networks.py: the
anti-aliased ``ResnetGenerator`` and ``PatchSampleF`` with ``use_mlp``), so the reference's
generator files load here strictly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganzoo_plugins.cyclegan.networks import ResnetGenerator


class FeatureResnetGenerator(ResnetGenerator):
    """The ResNet generator; called with ``nce_layers`` it returns the outputs of those layers of
    ``self.model`` instead of the translation, and stops after the last of them.

    Layer 0 is the reflection padding, so the first feature is the (padded) image itself. Features
    come through ``forward`` rather than a method of their own so that a DDP-wrapped generator
    sees every call.
    """

    def forward(self, x: Tensor, nce_layers: Sequence[int] = ()) -> Tensor | list[Tensor]:
        if not nce_layers:
            return self.model(x)
        feats, last = [], max(nce_layers)
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in nce_layers:
                feats.append(x)
            if index == last:
                break
        return feats


class PatchSampler(nn.Module):
    """F: one two-layer MLP head per encoder layer (Linear, ReLU, Linear to ``nc`` units).

    ``forward(feats, num_patches)`` draws ``num_patches`` locations per layer (all of them, in a
    random order, where a map has fewer), the same locations for every image of the batch, and
    returns each image's feature vectors there, projected and scaled to unit length:
    one (N, P, nc) tensor per layer, and the locations, which a second call takes as ``patch_ids``
    to sample the translation where it sampled the input.
    """

    def __init__(self, widths: Sequence[int], nc: int = 256):
        super().__init__()
        self.widths, self.nc = tuple(widths), nc
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(w, nc), nn.ReLU(), nn.Linear(nc, nc)) for w in widths)

    def forward(
        self, feats: Sequence[Tensor], num_patches: int, patch_ids: Sequence[Tensor] | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        projected, chosen = [], []
        for index, (feat, head) in enumerate(zip(feats, self.heads)):
            locations = feat.permute(0, 2, 3, 1).flatten(1, 2)  # N, H*W, C
            if patch_ids is None:
                ids = torch.randperm(locations.shape[1], device=feat.device)[:num_patches]
            else:
                ids = patch_ids[index]
            x = head(locations[:, ids])
            # The reference's Normalize, x / (|x| + 1e-7). vector_norm's gradient is 0 at a zero vector
            # (all ReLUs of a head off), where that of sqrt(sum(x^2)) is NaN.
            projected.append(x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + 1e-7))
            chosen.append(ids)
        return projected, chosen


def feature_widths(generator: FeatureResnetGenerator, nce_layers: Sequence[int], side: int) -> list[int]:
    """Channels of the generator's features at ``nce_layers``, from one forward pass of a blank image
    (the reference learns them from the first batch instead, which a checkpoint cannot hold)."""
    with torch.no_grad():
        feats = generator(torch.zeros(1, generator.input_nc, side, side), nce_layers=nce_layers)
    return [feat.shape[1] for feat in feats]
