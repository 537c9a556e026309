"""Objectives for pairs with an enumerated discrete site, and M2's semi-supervised objective with labels.

    enumerated   Pyro's ``TraceEnum_ELBO``: the discrete site summed over its K values (guide- or model-side,
                 see :mod:`bayesvae.models.discrete_sites`), z sampled; ``max_plate_nesting = 1`` counts the
                 data plate, so the particle plate and the enumeration dimensions go to its left.

    M2 (Kingma et al. 2014, eq. 9), one step on a batch x of B training images and a batch (x_l, y_l) of B_l
    labelled images (drawn afresh each step from the N labelled ones):
        J^α = Σ_x U(x) + (B / B_l) Σ_(x_l, y_l) [ L(x_l, y_l) + α log q(y_l | x_l) ]      (maximized; nats)
    U enumerates y (TraceEnum), L observes it (``model(x, y)``, ``guide(x, y)``), and the classifier term
    trains q(y|x) on the labelled images, which U alone would not (q(y|x) enters only the unlabelled bound).
    Every training image counts as unlabelled (its label unused); B / B_l gives the labelled batch the weight of
    the unlabelled one in the step. Per pass over the n images the classifier term thus weighs α·n in total
    against n unlabelled bounds: the paper's α = 0.1·N on the *mean* of log q (and Pyro's ss_vae_M2 multiplier
    of 46 per labelled image at 100 of 50,000 labels) is α = 0.1 here; α = 10 measured best (README).

Why a labelled batch every step, not labelled images left where they fall in the shuffled batches: with
100 labels among 8,333 MNIST images a batch of 128 holds 1.5 labelled images on average, and M2 then lost
to the labels-only classifier (58.5 % vs 75.6 % test accuracy, 20 epochs, README); Kingma et al. likewise
draw labelled and unlabelled minibatches side by side. The labelled picks are drawn from the data RNG at
the start of each epoch with the shuffle, so a resumed run draws the same ones.
"""

from __future__ import annotations

import math

import torch

import pyro.infer

from bayesvae.models.errors import BadInput
from bayesvae.models.discrete_sites import LABEL
from bayesvae.models.pair import Pair
from bayesvae.models.sites import MAX_PLATE_NESTING

UNLABELLED = -1


def make_enumerated_elbo(kind: str, particles: int) -> pyro.infer.TraceEnum_ELBO:
    """The ELBO for a pair with a discrete site: the class summed exactly, ``particles`` z-draws per image."""
    if kind == "iwae":
        raise BadInput("--elbo iwae cannot sum a discrete site out (Pyro's RenyiELBO does not enumerate): "
                       "use --elbo mc or analytic")
    return pyro.infer.TraceEnum_ELBO(num_particles=particles, vectorize_particles=True,
                                     max_plate_nesting=MAX_PLATE_NESTING)


def enumerated_note(kind: str, site: str) -> str | None:
    """The line to print when ``--elbo analytic`` meets a discrete site (None otherwise)."""
    if kind != "analytic":
        return None
    return (f"note: the discrete site {site!r} is summed out exactly (TraceEnum_ELBO); the KLs of z given each "
            f"value are estimated by Monte Carlo, like --elbo mc")


def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
        raise BadInput(f"--alpha must be a finite number ≥ 0, got {alpha!r}")
    return float(alpha)


def choose_labelled(labels: torch.Tensor | None, count: int, seed: int) -> torch.Tensor:
    """The training labels with all but ``count`` set to −1: the same number per class (the first
    ``count mod classes`` classes one more), chosen at random with ``seed``. Shape (N,), int64."""
    if labels is None:
        raise BadInput(f"--labels {count} needs a data set with labels; this one has none")
    if count > labels.shape[0]:
        raise BadInput(f"--labels {count} is more than the {labels.shape[0]} training images")
    classes = torch.unique(labels)
    per_class, extra = divmod(count, len(classes))
    generator = torch.Generator().manual_seed(seed)
    kept = torch.full_like(labels, UNLABELLED)
    for i, value in enumerate(classes.tolist()):
        members = torch.nonzero(labels == value).flatten()
        want = per_class + (i < extra)
        if want > len(members):
            raise BadInput(f"--labels {count} needs {want} images of class {value}, the training set has "
                           f"{len(members)}")
        chosen = members[torch.randperm(len(members), generator=generator)[:want]]
        kept[chosen] = labels[chosen]
    return kept


class SemiSupervisedObjective:
    """−J^α for a batch ``x`` and a labelled batch (see the module docstring), a loss for Pyro's ``SVI``:
    ``loss(model, guide, x, beta, x_l, y_l)`` with ``model(x, beta[, y])`` and ``guide(x, beta[, y])``.

    ``classifier(x)`` is q(y|x) (the guide's ``class_posterior``); ``alpha`` weighs log q(y|x) per labelled
    image against the bounds, which are sums over pixels (nats per image).
    """

    def __init__(self, elbo: pyro.infer.TraceEnum_ELBO, classifier, alpha: float):
        self.elbo = elbo
        # a labelled image has nothing to enumerate: Pyro's plain ELBO, same particles
        self.labelled_elbo = pyro.infer.Trace_ELBO(num_particles=elbo.num_particles, vectorize_particles=True,
                                                   max_plate_nesting=MAX_PLATE_NESTING)
        self.classifier = classifier
        self.alpha = check_alpha(alpha)

    def __call__(self, model, guide, x: torch.Tensor, beta: torch.Tensor, x_l: torch.Tensor,
                 y_l: torch.Tensor) -> torch.Tensor:
        unlabelled = self.elbo.differentiable_loss(model, guide, x, beta)                               # −Σ U(x)
        labelled = self.labelled_elbo.differentiable_loss(model, guide, x_l, beta, y_l)                 # −Σ L(x, y)
        classifier = -self.alpha * self.classifier(x_l).log_prob(y_l).sum()                             # −α Σ log q
        return unlabelled + (x.shape[0] / x_l.shape[0]) * (labelled + classifier)


def labelled_batches(labelled: torch.Tensor, steps: int, batch_size: int, generator: torch.Generator) -> list:
    """For each of ``steps`` steps, the indices of min(N, ``batch_size``) of the N labelled images
    (``labelled`` from :func:`choose_labelled`), a fresh random subset each step."""
    index = torch.nonzero(labelled != UNLABELLED).flatten()
    size = min(len(index), batch_size)
    return [index[torch.randperm(len(index), generator=generator, device=generator.device)[:size].to(index.device)]
            for _ in range(steps)]


def classifier(pair: Pair):
    """q(y | x) of a pair trained with labels: its guide's ``class_posterior(x)``."""
    fn = getattr(pair.definitions.get("guide"), "class_posterior", None)
    if fn is None:
        raise BadInput("--labels needs a guide with a classifier q(y|x), guide.class_posterior(x) "
                       "(the built-in --model m2 has one)")
    return fn


def check_labels_setup(pair: Pair, site: str | None, train_labels: torch.Tensor | None, options) -> None:
    """``--labels N`` needs a label site, a classifier q(y|x) and N ≤ the labelled images available per class."""
    if site is not None:
        make_enumerated_elbo(options.elbo, options.particles)   # refuses iwae
    if not options.labels:
        return
    if site != LABEL:
        raise BadInput(f"--labels {options.labels} needs a model whose label is a discrete site {LABEL!r} "
                       f"(--model m2); this one has {'none' if site is None else repr(site)}")
    classifier(pair)
    choose_labelled(train_labels, options.labels, options.seed)
