"""The usual remedies for posterior collapse, named only where they apply to the run's configuration."""

from __future__ import annotations

HIGH_LR = 0.01
"""Adam learning rates above this (10× the default 1e-3) are named as a cause of early collapse."""

WIDE_GAUSSIAN_SCALE = 0.3
"""A fixed Gaussian pixel scale above this (pixels in [0, 1]) makes ignoring z cheap: named as a cause."""


def collapse_remedies(config: dict) -> list[str]:
    """What to try against collapse, most specific first, for the settings in config.json (a dict)."""
    model, training = config.get("model", {}), config.get("training", {})
    out = []
    if model.get("likelihood") == "gaussian" and (model.get("likelihood_scale") or 0) > WIDE_GAUSSIAN_SCALE:
        out.append(f"a smaller --likelihood-scale (now {model['likelihood_scale']:g}; pixels lie in [0, 1], so a "
                   f"scale that wide makes the mean image nearly as good as any reconstruction) or "
                   f"--likelihood gaussian-learned")
    if (training.get("beta") or 1.0) > 1.0:
        out.append(f"a lower --beta (now {training['beta']:g})")
    if (training.get("lr") or 0) > HIGH_LR:
        out.append(f"a smaller --lr (now {training['lr']:g}): large early steps push the encoder into the collapsed "
                   f"optimum")
    if not training.get("warmup_epochs"):
        out.append("KL warm-up (--warmup-epochs 20 --beta0 0)")
    out.append("a weaker decoder (smaller --hidden), or free bits (a floor on each dimension's KL; not built in)")
    return out
