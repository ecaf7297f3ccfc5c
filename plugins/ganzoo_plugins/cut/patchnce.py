"""PatchNCE (Park et al. 2020, eq. 2 and 3): an output patch should match the input patch at its
own location, against the input patches elsewhere in the same image.

For a query ``v`` (an output patch's unit vector), its positive ``v+`` (the input patch at the
same place) and the negatives ``v-_n`` (the input patches at the other sampled places):

    l(v, v+, v-) = -log( exp(v.v+ / tau) / (exp(v.v+ / tau) + sum_n exp(v.v-_n / tau)) )

which is a cross-entropy over 1 + (P - 1) candidates with the positive as the right answer.
As in the reference (models/patchnce.py): negatives come from the same image only (its
``nce_includes_all_negatives_from_minibatch`` is off for CUT and FastCUT); a location's own
similarity is masked with -10 rather than dropped, i.e. weighted exp(-10 / tau), about 1e-62;
the keys are detached, so gradients reach G and F through the queries alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MASKED_SIMILARITY = -10.0  # the reference's stand-in for a location's similarity with itself


def patch_nce_loss(queries: Tensor, keys: Tensor, temperature: float) -> Tensor:
    """Per-patch losses (N, P) for queries and keys of shape (N, P, C), unit vectors, where query i
    and key i come from the same location."""
    keys = keys.detach()
    # float32 even under autocast: dividing by tau = 0.07 would magnify half-precision rounding.
    queries, keys = queries.float(), keys.float()
    n, patches, _ = queries.shape
    similarity = torch.bmm(queries, keys.transpose(1, 2))  # [b, i, j] = q_i . k_j
    positive = similarity.diagonal(dim1=1, dim2=2).unsqueeze(-1)
    own = torch.eye(patches, dtype=torch.bool, device=queries.device)
    negatives = similarity.masked_fill(own, MASKED_SIMILARITY)
    logits = torch.cat([positive, negatives], dim=-1) / temperature
    target = torch.zeros(n * patches, dtype=torch.long, device=queries.device)
    return F.cross_entropy(logits.flatten(0, 1), target, reduction="none").view(n, patches)
