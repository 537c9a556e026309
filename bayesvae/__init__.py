"""bayesvae: variational autoencoders as explicit Pyro programs, measured against their Bayes terms.

    p(x, z) = p(z) p(x | z)          model: prior × likelihood          bayesvae.models
    q(z | x)                         guide: amortized approximate posterior
    log p(x) ≥ ELBO                  fitted by SVI                       bayesvae.inference
    log p(x) − ELBO = KL(q ‖ p(z|x)) measured                            bayesvae.analysis

Python API: ``fit``, ``load_run``, ``resume``, ``diagnose``, ``compare``, ``sweep`` (see README, "Python API / notebooks").
Attributes load lazily, so ``import bayesvae.models`` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "fit": "bayesvae.api",
    "resume": "bayesvae.api",
    "load_run": "bayesvae.run",
    "Run": "bayesvae.run",
    "BadInput": "bayesvae.models.errors",
    "diagnose": "bayesvae.diagnose_api",
    "compare": "bayesvae.compare_api",
    "sweep": "bayesvae.sweep_api",
}


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'bayesvae' has no attribute {name!r}")


__all__ = sorted(_API)
