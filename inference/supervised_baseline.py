"""The baseline M2 must beat: its own classifier q(y | x), trained on the labelled images alone.

Cross-entropy −Σ log q(y | x) over the N labelled images only (no unlabelled image, no generative model),
full batch, Adam, a fixed number of steps (there are no held-out labels to stop on), pixels binarized
afresh at every step as in M2's training. Same network, same initialization (built from the same
:class:`~bayesvae.models.build.ModelSpec` and seed), so any gain of M2 comes from the unlabelled images.
"""

from __future__ import annotations

import pyro
import torch

from bayesvae.models.build import ModelSpec, build_pair

from .batches import binarize
from .semi_supervised import UNLABELLED


def train_supervised_classifier(spec: ModelSpec, image_shape, train_x: torch.Tensor, labelled: torch.Tensor,
                                steps: int = 500, lr: float = 1e-3, seed: int = 0, binarized: bool = True):
    """q(y | x) of a fresh M2 guide fitted to the images whose ``labelled`` entry is not −1; returns
    ``classifier(x) -> Categorical``."""
    pyro.set_rng_seed(seed)
    guide = build_pair(spec, image_shape).guide
    keep = labelled != UNLABELLED
    x, y = train_x[keep], labelled[keep]
    parameters = [*guide.classifier_encoder.parameters(), *guide.class_logits.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    for _ in range(steps):
        xb = binarize(x, generator) if binarized else x
        loss = -guide.class_posterior(xb).log_prob(y).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return guide.class_posterior
