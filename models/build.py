"""Building a model/guide pair from a :class:`ModelSpec`: built-in parts or a user's script, one path.

The built-in definitions (``Model`` with a prior, a decoder and a likelihood; a guide on an encoder)
and a user's ``model``/``guide`` functions come out as the same :class:`~.pair.Pair`, so training
and diagnostics never ask where a definition came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

from torch import nn

from .checks import check_declared, declare
from .errors import BadInput
from .guides import GUIDES, make_guide
from .likelihoods import LIKELIHOODS, make_likelihood
from .m2 import M2Guide, M2Model
from .mixture import MixtureGuide, MixtureModel
from .model import Model
from .networks import ACTIVATIONS, DEFAULT_ACTIVATION, NETWORKS, make_decoder, make_encoder
from .pair import Pair
from .priors import PRIORS, PRIORS_NEEDING_GUIDE, make_prior
from .user_code import get_callable, is_code_ref, load_script, split_code_ref

BUILTIN_MODEL = "builtin"
DISCRETE_MODELS = ("mixture", "m2")
"""Built-in models with a discrete latent (:mod:`.mixture`, :mod:`.m2`)."""
CLUSTER_GUIDE = "cluster"
"""``--model mixture --guide cluster``: q(c|x) q(z|x,c). Any other built-in guide with a density is q(z|x),
the cluster then summed out in the model (its posterior p(c|x) computed exactly given z)."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a pair; saved in a run's config.json.

    ``model`` is ``"builtin"`` (prior × decoder × likelihood below) or ``"script.py:function"``;
    ``guide`` is a name in :data:`~.guides.GUIDES` or ``"script.py:function"``. Each setting's help,
    kind and range are declared once here (:mod:`.checks`); the command line and ``bayesvae.fit`` read them.
    """

    model: str = declare(BUILTIN_MODEL, "'builtin' (prior × decoder × likelihood below), 'mixture' (a cluster c "
                         "above z, summed out exactly), 'm2' (Kingma et al. 2014's semi-supervised label y) or a "
                         "script, e.g. my_vae.py:model", metavar="MODEL")
    guide: str = declare("normal", f"q(z|x): {', '.join(GUIDES)} or a script, e.g. my_vae.py:guide "
                         f"(--model mixture also: {CLUSTER_GUIDE}, q(c|x) q(z|x,c))", metavar="GUIDE")
    prior: str = declare("normal", "p(z) of the built-in model", kind="choice", choices=lambda: tuple(PRIORS))
    likelihood: str = declare("bernoulli", "p(x|z) of the built-in model", kind="choice",
                              choices=lambda: tuple(LIKELIHOODS))
    likelihood_scale: float = declare(0.1, "pixel std of the Gaussian likelihoods", kind="number", above=1e-3)
    net: str = declare("mlp", "encoder/decoder networks of the built-in parts", kind="choice", choices=NETWORKS)
    hidden: tuple[int, ...] = declare((400,), "hidden widths, comma-separated (the conv net uses the last)",
                                      kind="whole_list", low=1, metavar="N,N,...")
    latent_dim: int = declare(16, "dimensions of z", kind="whole", low=1, metavar="D")
    activation: str = declare(DEFAULT_ACTIVATION, "nonlinearity of the built-in networks' hidden layers "
                              "(softplus: smooth, the setting of every earlier run; relu often fits MNIST better)",
                              kind="choice", choices=tuple(ACTIVATIONS))
    clusters: int = declare(10, "values K of the discrete latent of --model mixture / m2 (M2: the classes)",
                            kind="whole", low=1, metavar="K")

    def __post_init__(self):
        check_declared(self)
        if self.model not in (BUILTIN_MODEL, *DISCRETE_MODELS) and not is_code_ref(self.model):
            raise BadInput(f"--model must be {BUILTIN_MODEL!r}, {' or '.join(map(repr, DISCRETE_MODELS))} or a script, "
                           f"e.g. my_vae.py:model; got {self.model!r}")
        check_discrete_spec(self)
        if not is_code_ref(self.guide) and self.guide not in GUIDES and \
                (self.model, self.guide) != ("mixture", CLUSTER_GUIDE):
            raise BadInput(f"unknown --guide {self.guide!r}; choose one of: {', '.join(GUIDES)} "
                           f"or a script, e.g. my_vae.py:guide")
        if self.builtin_model and self.prior in PRIORS_NEEDING_GUIDE and (is_code_ref(self.guide) or self.guide == "delta"):
            raise BadInput(f"--prior {self.prior} is a mixture of the guide's q(z|x) at learned pseudo-inputs: it needs a "
                           f"built-in guide with a density ({', '.join(g for g in GUIDES if g != 'delta')}), "
                           f"not {self.guide!r}")

    def applicable(self) -> tuple[str, ...]:
        """The settings this pair uses: a user's model ignores prior/likelihood; networks serve built-in parts
        only; ``latent_dim`` of a user's model and guide is read from their trace (it is still recorded)."""
        names = ["model", "guide", "latent_dim"]
        if self.builtin_model or self.model in DISCRETE_MODELS or not is_code_ref(self.guide):
            names += ["net", "hidden", "activation"]
        if self.builtin_model:
            names += ["prior", "likelihood", "likelihood_scale"]
        if self.model in DISCRETE_MODELS:
            names += ["likelihood", "likelihood_scale", "clusters"]
        return tuple(n for n in (f.name for f in fields(self)) if n in names)

    @property
    def code_refs(self) -> dict[str, str]:
        """``{"model": ref, "guide": ref}`` for the parts that come from a user's script."""
        return {role: ref for role, ref in (("model", self.model), ("guide", self.guide)) if is_code_ref(ref)}

    @property
    def builtin_model(self) -> bool:
        return self.model == BUILTIN_MODEL

    def to_dict(self) -> dict:
        """The applicable settings (see :meth:`applicable`), as config.json records them."""
        out = {name: value for name, value in asdict(self).items() if name in self.applicable()}
        if "hidden" in out:
            out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInput(f"unknown model settings {unknown}")
        return cls(**data)


def build_pair(spec: ModelSpec, image_shape: Sequence[int], base_dir: Path | None = None) -> Pair:
    """Build the pair for ``spec`` and images of shape ``(C, H, W)``; model first, then guide.

    A prior made of the guide (VampPrior) is built with the model and handed the guide afterwards, so
    the construction order, and with it the initial weights for a seed, is the same for every pair.

    Scripts are resolved against ``base_dir`` when their path is relative. Importing a script runs it:
    callers only pass scripts the user asked for or trusted.
    """
    scripts: dict[Path, object] = {}
    modules: list[nn.Module] = []

    def from_script(ref: str):
        path, name = split_code_ref(ref)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        if path not in scripts:
            scripts[path] = load_script(path)
            modules.extend(v for v in vars(scripts[path]).values() if isinstance(v, nn.Module))
        return get_callable(scripts[path], name, path)

    if spec.model in DISCRETE_MODELS:
        model, guide = build_discrete(spec, image_shape)
        return Pair(model, guide, modules=[model, guide], definitions={"model": model, "guide": guide})
    if spec.builtin_model:
        model = Model(make_prior(spec.prior, spec.latent_dim, image_shape),
                      make_decoder(spec.net, spec.latent_dim, image_shape, spec.hidden, spec.activation),
                      make_likelihood(spec.likelihood, spec.likelihood_scale))
        modules.append(model)
        model_definition: object = model
    else:
        model = model_definition = from_script(spec.model)
    if is_code_ref(spec.guide):
        guide = guide_definition = from_script(spec.guide)
    else:
        guide = make_guide(spec.guide, make_encoder(spec.net, image_shape, spec.hidden, spec.activation), spec.latent_dim)
        modules.append(guide)
        guide_definition = guide
    if spec.builtin_model and spec.prior in PRIORS_NEEDING_GUIDE:
        model.prior.use_guide(guide)  # VampPrior: p(z) = (1/K) Σ_k q(z | u_k), built from the guide just made
    return Pair(model, guide, modules=_unique(modules),
                definitions={"model": model_definition, "guide": guide_definition})


def check_discrete_spec(spec: ModelSpec) -> None:
    """The discrete models bring their own prior; the mixture takes a guide with a density, M2 its own."""
    if spec.model == "mixture" and (spec.prior != "normal" or spec.guide == "delta" or is_code_ref(spec.guide)):
        raise BadInput(f"--model mixture has its own prior p(c) p(z|c) and needs a built-in guide with a density: "
                       f"--guide {CLUSTER_GUIDE} (q(c|x) q(z|x,c)) or one of "
                       f"{', '.join(g for g in GUIDES if g != 'delta')} (q(z|x), c summed in the model)")
    if spec.model == "m2" and (spec.guide != "normal" or spec.prior != "normal"):
        raise BadInput("--model m2 has its own prior and guide (q(y|x) q(z|x,y)): --guide and --prior cannot be changed")


def build_discrete(spec: ModelSpec, image_shape: Sequence[int]):
    """The mixture VAE or M2 (model first, then guide, as for every pair)."""
    k, d, act = spec.clusters, spec.latent_dim, spec.activation
    likelihood = make_likelihood(spec.likelihood, spec.likelihood_scale)
    if spec.model == "mixture":
        model = MixtureModel(k, d, make_decoder(spec.net, d, image_shape, spec.hidden, act), likelihood)
        encoder = make_encoder(spec.net, image_shape, spec.hidden, act)
        if spec.guide == CLUSTER_GUIDE:
            return model, MixtureGuide(encoder, k, d)
        return model, make_guide(spec.guide, encoder, d)
    model = M2Model(k, d, make_decoder(spec.net, d + k, image_shape, spec.hidden, act), likelihood)
    encoder = make_encoder(spec.net, image_shape, spec.hidden, act)
    return model, M2Guide(encoder, make_encoder(spec.net, image_shape, spec.hidden, act), k, d)


def _unique(modules: list[nn.Module]) -> list[nn.Module]:
    seen: dict[int, nn.Module] = {}
    for module in modules:
        seen.setdefault(id(module), module)
    return list(seen.values())
