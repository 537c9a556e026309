"""The ELBO's terms with the discrete site fixed at each of its K values: the class summed exactly, z sampled.

For a pair with one discrete latent c (:mod:`bayesvae.models.discrete_sites`) and each value c = 1..K,
model and guide are run with c conditioned to that value for every image, z ~ q(z | x, c) (S draws):

    log w_c      = log p(c) + log p(z | c) + log p(x | z, c) − log q(z | x, c)      (K, S, N)
    log p(x | z, c)                                                                    (K, S, N)
    log p(c)     prior of the class                                                    (K, N)
    log q(c | x) the guide's class posterior (guide-side enumeration only)             (K, N)

Every sum over c below is exact; only z is Monte Carlo. Guide-side (q(c|x) q(z|x,c)):

    ELBO = Σ_c q(c|x) [E log w_c − log q(c|x)]
         = Σ_c q(c|x) E log p(x|z,c) − Σ_c q(c|x) KL(q(z|x,c) ‖ p(z|c)) − KL(q(c|x) ‖ p(c))

Model-side (guide q(z|x) only): one z per draw serves all classes and
ELBO = E_q(z|x)[log Σ_c w_c]. Nats per image. Densities are the model's own, unscaled (β = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pyro import poutine

from bayesvae.models.discrete_sites import check_discrete_sites, class_values
from bayesvae.models.pair import Pair
from bayesvae.models.protocol import trace_pair
from bayesvae.models.sites import LATENT, OBSERVED

from .terms import in_particle_plate


def discrete_site_of(pair: Pair, x: torch.Tensor) -> str | None:
    """The pair's enumerated discrete site on the batch ``x`` (None without one); BadInput if not enumerable.
    A probe: it draws from a forked RNG, so training and resumed training draw the same numbers."""
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        guide_trace, model_trace = trace_pair(pair, x[:2])
    return check_discrete_sites(guide_trace, model_trace)


@dataclass
class ClassTerms:
    """Per class value, draw and image (see the module docstring), nats."""

    values: torch.Tensor            # (K,) the support of c
    log_weight: torch.Tensor        # (K, S, N)
    log_likelihood: torch.Tensor    # (K, S, N)
    log_prior_class: torch.Tensor   # (K, N)
    log_prior_code: torch.Tensor    # (K, S, N) log p(z | c)
    log_q_class: torch.Tensor | None  # (K, N); None for model-side enumeration

    @property
    def guide_side(self) -> bool:
        return self.log_q_class is not None

    @property
    def q_class(self) -> torch.Tensor | None:
        return None if self.log_q_class is None else self.log_q_class.exp()

    def elbo(self) -> torch.Tensor:
        """The enumerated ELBO per (draw, image), shape (S, N)."""
        if self.log_q_class is None:
            return self.log_weight.logsumexp(0)
        q = self.q_class[:, None]
        return (q * (self.log_weight - self.log_q_class[:, None])).sum(0)

    def anatomy(self) -> dict[str, torch.Tensor]:
        """Per image (averaged over draws): ``elbo``, ``log_likelihood`` (E log p(x|z,c)), ``kl_class``
        (KL(q(c|x) ‖ p(c)), NaN model-side), ``kl_code`` (Σ_c q(c|x) KL(q(z|x,c) ‖ p(z|c)), or the rest of
        the gap model-side), each ``(N,)``; ``elbo = log_likelihood − kl_code − kl_class``."""
        elbo = self.elbo().mean(0)
        if self.log_q_class is None:  # responsibilities p(c | z, x) weight the per-class likelihoods
            r = torch.softmax(self.log_weight, 0)
            log_lik = (r * self.log_likelihood).sum(0).mean(0)
            nan = torch.full_like(elbo, float("nan"))
            return {"elbo": elbo, "log_likelihood": log_lik, "kl_class": nan, "kl_code": log_lik - elbo}
        q = self.q_class
        log_lik = (q * self.log_likelihood.mean(1)).sum(0)
        kl_class = (q * (self.log_q_class - self.log_prior_class)).sum(0)
        code = self.log_weight - self.log_prior_class[:, None] - self.log_likelihood  # log p(z|c) − log q(z|x,c)
        kl_code = -(q * code.mean(1)).sum(0)
        return {"elbo": elbo, "log_likelihood": log_lik, "kl_class": kl_class, "kl_code": kl_code}


def _sample_sum(trace: poutine.Trace, like: torch.Tensor, shape, observed: bool | None) -> torch.Tensor:
    total = like.new_zeros(shape)
    for site in trace.nodes.values():
        if site["type"] == "sample" and (observed is None or site["is_observed"] == observed):
            total = total + site["unscaled_log_prob"]
    return total.expand(shape)


def class_terms(pair: Pair, x: torch.Tensor, site: str, num_samples: int = 1) -> ClassTerms:
    """Run the pair once per value of the discrete ``site`` (conditioned for all images), S draws of z."""
    n, shape = x.shape[0], (num_samples, x.shape[0])
    with pair.active():
        guide_trace, model_trace = trace_pair(pair, x)
    values = class_values(model_trace.nodes[site]["fn"]).to(x.device)
    guide_side = site in guide_trace.nodes and guide_trace.nodes[site]["type"] == "sample"
    log_q_class = guide_trace.nodes[site]["fn"].log_prob(values[:, None]) if guide_side else None
    shared_guide = None
    log_w, log_lik, log_pc, log_pz = [], [], [], []
    for value in values:
        data = {site: value.expand(n)}
        with pair.active():
            if guide_side or shared_guide is None:
                guide = in_particle_plate(poutine.condition(pair.guide, data), num_samples)
                shared_guide = poutine.trace(guide).get_trace(x)
            model = in_particle_plate(poutine.condition(pair.model, data), num_samples)
            m_trace = poutine.trace(poutine.replay(model, trace=shared_guide)).get_trace(x)
        shared_guide.compute_log_prob()
        m_trace.compute_log_prob()
        log_w.append(_sample_sum(m_trace, x, shape, None) - _sample_sum(shared_guide, x, shape, observed=False))
        log_lik.append(m_trace.nodes[OBSERVED]["unscaled_log_prob"].expand(shape))
        log_pc.append(m_trace.nodes[site]["unscaled_log_prob"].expand(shape)[0])
        log_pz.append(m_trace.nodes[LATENT]["unscaled_log_prob"].expand(shape))
    return ClassTerms(values, torch.stack(log_w), torch.stack(log_lik), torch.stack(log_pc), torch.stack(log_pz),
                      log_q_class)


@torch.no_grad()
def discrete_elbo_means(pair: Pair, x: torch.Tensor, site: str, chunk: int = 500) -> dict[str, float]:
    """:func:`bayesvae.inference.evaluate.elbo_means` for a pair with a discrete site (one z-draw per class
    and image): ``elbo``, ``log_likelihood``, ``kl`` (= ``kl_code`` + ``kl_class``), ``log_prior``
    (E log p(c) + E log p(z|c)), nats per image averaged over the images."""
    totals: dict[str, float] = {}
    for xb in x.split(chunk):
        terms = class_terms(pair, xb, site)
        parts = terms.anatomy()
        weights = terms.q_class[:, None] if terms.guide_side else torch.softmax(terms.log_weight, 0)
        log_prior = (weights * (terms.log_prior_code + terms.log_prior_class[:, None])).sum(0).mean(0)
        kl = parts["kl_code"] + (parts["kl_class"] if terms.guide_side else 0.0)
        for name, value in (*parts.items(), ("kl", kl), ("log_prior", log_prior)):
            totals[name] = totals.get(name, 0.0) + float(value.sum())
    return {name: value / x.shape[0] for name, value in totals.items()}


def most_probable_class_pair(pair: Pair, site: str, x: torch.Tensor) -> Pair:
    """The pair with the discrete ``site`` fixed, in model and guide, at c* = argmax_c q(c | x) of each image:
    a pair whose only latent is z, so diagnostics made for q(z | x) (latent statistics, ELBO surgery, MCMC on
    p(z | x, c*)) run on it and measure z *given the most probable class*. Same parameters as ``pair``.

    Needs guide-side enumeration (q(c | x) to take the argmax of; checked on the images ``x``): ValueError otherwise.
    """
    def top_class(x: torch.Tensor) -> torch.Tensor:
        with poutine.block(), torch.no_grad():   # an inner look at q(c|x), hidden from any outer trace
            fn = poutine.trace(pair.guide).get_trace(x).nodes[site]["fn"]
        values = class_values(fn)
        scores = fn.log_prob(values.reshape(-1, *[1] * len(fn.batch_shape)))
        return values[scores.argmax(0)]

    def given_top(program):
        def conditioned(x: torch.Tensor, *args):
            return poutine.condition(program, {site: top_class(x)})(x, *args)
        return conditioned

    guide_trace, _ = trace_pair(pair, x[:2])
    if site not in guide_trace.nodes:
        raise ValueError(f"the guide has no {site!r}: there is no q(c|x) to take the most probable class of")
    conditioned = Pair(given_top(pair.model), given_top(pair.guide), modules=pair.modules,
                       definitions=pair.definitions)
    conditioned.param_state = pair.param_state
    return conditioned
