"""The checks of a training run that need its data, run before anything is written."""

from __future__ import annotations

import torch

from bayesvae.models.discrete_sites import check_discrete_sites
from bayesvae.models.errors import BadInput
from bayesvae.models.families import family_name
from bayesvae.models.pair import Pair
from bayesvae.models.protocol import check_pair
from bayesvae.models.sites import OBSERVED

from .batches import binarize
from .image_source import check_in_memory_for, count, head, support_sample
from .objectives import analytic_kl_note
from .options import TrainOptions
from .semi_supervised import check_labels_setup, enumerated_note


def check_training_setup(pair: Pair, train_x, test_x, options: TrainOptions,
                         train_labels: torch.Tensor | None = None) -> list[str]:
    """All checks that need data, before anything is written; returns notes to print.

    ``train_x``/``test_x``: image tensors or streamed data sets (:mod:`.image_source`). The pair follows the
    protocol on a small batch (this also creates its parameters), the batch size fits the data, and the
    images lie in the likelihood's support (:func:`.image_source.support_sample`).
    """
    n = count(train_x)
    if options.batch_size > n:
        raise BadInput(f"--batch-size {options.batch_size} is larger than the {n} training images")
    first = head(train_x, 4)
    generator = torch.Generator(device=first.device).manual_seed(options.seed)
    sample = first if options.binarize == "none" else binarize(first, generator)
    guide_trace, model_trace = check_pair(pair, sample)
    likelihood = model_trace.nodes[OBSERVED]["fn"]
    if options.binarize == "none":  # binarized pixels are 0/1, in every likelihood's support
        for split, data in (("training", train_x), ("test", test_x)):
            images = support_sample(data)
            if not bool(likelihood.support.check(images).all()):
                raise BadInput(
                    f"the {family_name(likelihood)} likelihood does not support the {split} images "
                    f"({int(torch.unique(images).numel())} distinct pixel values): use --binarize dynamic "
                    f"or a likelihood for grey levels (--likelihood continuous-bernoulli / gaussian)")
    site = check_discrete_sites(guide_trace, model_trace)
    check_in_memory_for(site, train_x)
    check_labels_setup(pair, site, train_labels, options)
    note = enumerated_note(options.elbo, site) if site else analytic_kl_note(options.elbo, guide_trace, model_trace)
    return [note] if note else []
