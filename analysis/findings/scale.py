"""A fixed Gaussian pixel scale s set beside the reconstruction residual the model actually achieves.

For p(x | z) = Π_i N(x_i; μ_i(z), s²) over D pixels with s fixed, the likelihood term inverts exactly
to the mean squared residual (the measurement needs nothing but the number already computed):

    E_q[log p(x|z)] = −(D/2) log(2π s²) − E_q[Σ_i (x_i − μ_i(z))²] / (2 s²)
    r² = E_q[Σ_i (x_i − μ_i(z))²] / D = −2 s² (E_q[log p(x|z)] / D + ½ log(2π s²))    (per pixel)

The best fixed scale for these reconstructions is s = r; at scale s the likelihood term is lower by
D (log(s/r) + r²/(2s²) − ½) nats per image than at s = r.
"""

from __future__ import annotations

import math

import bayesvae.analysis.findings.thresholds as T  # absolute: "from . import" would make the package a dependency
from .curves import pixels
from .finding import Finding


def residual_rms(log_likelihood: float, scale: float, d: int) -> float:
    """r, the root-mean-square residual per pixel implied by E_q[log p(x|z)] (nats/image) at fixed scale s."""
    mean_square = -2.0 * scale ** 2 * (log_likelihood / d + 0.5 * math.log(2 * math.pi * scale ** 2))
    return math.sqrt(max(mean_square, 0.0))


def likelihood_loss_nats(scale: float, rms: float, d: int) -> float:
    """How much higher E_q[log p(x|z)] would be at s = r than at s (nats/image), for the same reconstructions."""
    if rms <= 0:
        return math.inf
    return d * (math.log(scale / rms) + rms ** 2 / (2 * scale ** 2) - 0.5)


def gaussian_scale_finding(config: dict, log_likelihood: float | None, where: str) -> Finding | None:
    """A warning when the fixed ``--likelihood-scale`` is more than SCALE_RATIO_MAX away from the residual."""
    model = (config or {}).get("model", {})
    d = pixels(config)
    if (model.get("likelihood") != "gaussian" or model.get("model", "builtin") != "builtin" or d is None
            or log_likelihood is None or not math.isfinite(log_likelihood)):
        return None
    s = float(model.get("likelihood_scale", 0.1))
    r = residual_rms(log_likelihood, s, d)
    ratio = s / r if r > 0 else math.inf
    if 1 / T.SCALE_RATIO_MAX <= ratio <= T.SCALE_RATIO_MAX:
        return None
    wide = ratio > 1
    return Finding("gaussian-scale-mismatch", "warning",
                   f"the fixed Gaussian pixel scale {s:g} is {ratio:.1f}× the measured reconstruction residual {r:.3g}"
                   if wide else f"the fixed Gaussian pixel scale {s:g} is 1/{1 / ratio:.1f} of the measured "
                   f"reconstruction residual {r:.3g}",
                   {"likelihood_scale": s, "residual_rms": r, "ratio": ratio,
                    "likelihood_term_nats": log_likelihood, "nats_lost_to_scale": likelihood_loss_nats(s, r, d),
                    "measured_from": where},
                   ("The likelihood is much wider than the reconstruction errors: reconstructing x barely pays, "
                    "so the KL term wins and z is used little (or not at all)." if wide else
                    "The likelihood is much narrower than the reconstruction errors: every pixel's error is "
                    "punished heavily, log p(x|z) is dominated by it and the ELBO is far below its best scale."),
                   f"--likelihood-scale {r:.2g} (the residual) or --likelihood gaussian-learned")
