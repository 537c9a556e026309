"""bayesvae.models: the Bayes terms as Pyro code.

Prior p(z) (:mod:`.priors`), likelihood p(x | z) (:mod:`.likelihoods`), networks (:mod:`.networks`),
the model p(x, z) (:mod:`.model`), guides q(z | x) (:mod:`.guides`), the protocol every pair follows
(:mod:`.sites`, :mod:`.protocol`) and building a pair from a spec or a user's script (:mod:`.build`).
"""

from .build import ModelSpec, build_pair
from .errors import BadInput
from .pair import Pair
from .protocol import check_pair
from .sites import DATA_PLATE, LATENT, OBSERVED

__all__ = ["BadInput", "DATA_PLATE", "LATENT", "ModelSpec", "OBSERVED", "Pair", "build_pair", "check_pair"]
