"""The evidence's compiled log-weights: the same draws and numbers as Pyro's traces, bit for bit."""

import pyro
import pytest
import torch

from bayesvae.inference import compiled as compiled_module
from bayesvae.inference.compiled import traceable
from bayesvae.inference.evidence import estimate_log_evidence
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.errors import BadInput
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian

FIELDS = ("log_px", "elbo", "se", "delta_se", "elbo_se", "khat")


def _digits_pair(guide="normal", **spec):
    torch.manual_seed(0)   # the networks' initial weights
    pair = build_pair(ModelSpec(guide=guide, latent_dim=3, hidden=(16,), **spec), (1, 8, 8))
    pair.initialize(torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    return pair


def _assert_same(a, b, tolerance=0.0):
    for field in FIELDS:   # k̂ (NaN where there are too few draws to fit it) amplifies rounding in the tail fit
        close = 100 * tolerance if field == "khat" else tolerance
        torch.testing.assert_close(getattr(a, field), getattr(b, field), rtol=close, atol=close,
                                   equal_nan=True, msg=field)


@pytest.mark.parametrize("guide, spec, tolerance", [
    ("normal", {}, 0.0), ("lowrank", {}, 1e-5), ("fullcov", {}, 1e-5), ("iaf", {}, 0.0),
    ("normal", {"prior": "mog"}, 0.0), ("normal", {"prior": "vamp"}, 0.0),
    ("normal", {"likelihood": "continuous-bernoulli"}, 0.0), ("normal", {"likelihood": "gaussian-learned"}, 0.0)])
def test_compiled_chunks_equal_pyro_traces(guide, spec, tolerance):
    """Bit for bit, except the low-rank and full-covariance guides' graphs, which round a few 10⁻⁶ nats
    differently (their linear algebra)."""
    pair = _digits_pair(guide, **spec)
    x = torch.bernoulli(torch.full((13, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(1))
    # 13 images in blocks of 5 (5, 5, 3) and K = 23 in chunks of 7 (7, 7, 7, 2), every chunk compiled:
    # four graphs, (7, 5), (2, 5), (7, 3), (2, 3)
    fast = estimate_log_evidence(pair, x, k=23, chunk=7, batch_size=5, seed=4, compiled=True)
    slow = estimate_log_evidence(pair, x, k=23, chunk=7, batch_size=5, seed=4, compiled=False)
    _assert_same(fast, slow, tolerance)


def test_a_graph_traced_on_binary_pixels_never_scores_grey_ones():
    """Blocks of binary then grey images: the Bernoulli's branch on the pixels is part of the graph's key."""
    pair = _digits_pair()
    generator = torch.Generator().manual_seed(2)
    binary = torch.bernoulli(torch.full((4, 1, 8, 8), 0.4), generator=generator)
    grey = torch.rand(4, 1, 8, 8, generator=generator)
    x = torch.cat([binary, grey])
    with pyro.validation_enabled(False):   # grey pixels are outside the Bernoulli's support
        fast = estimate_log_evidence(pair, x, k=12, chunk=4, batch_size=4, seed=3, compiled=True)
        slow = estimate_log_evidence(pair, x, k=12, chunk=4, batch_size=4, seed=3, compiled=False)
    _assert_same(fast, slow)


@pytest.mark.parametrize("compiled", [True, False])
def test_pyro_checks_every_block_of_images_compiled_or_not(compiled):
    """The compiled chunks skip Pyro's checks; the evidence still makes them for every image: grey pixels in
    the last block are refused under validation, and a point-mass guide has no importance weights."""
    pair = _digits_pair()
    generator = torch.Generator().manual_seed(2)
    x = torch.cat([torch.bernoulli(torch.full((8, 1, 8, 8), 0.4), generator=generator),
                   torch.rand(1, 1, 8, 8, generator=generator)])
    with pyro.validation_enabled(True), pytest.raises(ValueError, match="support"):
        estimate_log_evidence(pair, x, k=12, chunk=4, batch_size=4, compiled=compiled)
    point_mass = _digits_pair("delta")
    assert traceable(point_mass)
    with pytest.raises(BadInput, match="point mass"):
        estimate_log_evidence(point_mass, x[:8], k=12, chunk=4, batch_size=4, compiled=compiled)


def test_linear_gaussian_pair_compiles_to_the_same_numbers():
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, seed=1)
    pair = linear_gaussian_pair(model, exact_guide(model, shift=0.3))
    x = model.sample_images(9, torch.Generator().manual_seed(2))
    assert traceable(pair)
    _assert_same(estimate_log_evidence(pair, x, k=30, chunk=8, batch_size=4, seed=0, compiled=True),
                 estimate_log_evidence(pair, x, k=30, chunk=8, batch_size=4, seed=0, compiled=False))


def test_user_scripts_are_scored_by_pyro_traces(monkeypatch):
    from pathlib import Path

    import bayesvae
    template = Path(__file__).resolve().parents[1] / "examples" / "vae_template.py"
    run = bayesvae.fit(model=f"{template}:model", guide=f"{template}:guide", epochs=1, device="cpu",
                       progress=False, log=lambda _: None)
    assert not traceable(run.pair) and traceable(_digits_pair())

    def refuse(*args, **kwargs):
        raise AssertionError("a user's script was compiled")
    monkeypatch.setattr(compiled_module.CompiledLogWeights, "for_images", refuse)
    x = torch.bernoulli(torch.full((3, 1, 8, 8), 0.5), generator=torch.Generator().manual_seed(0))
    assert estimate_log_evidence(run.pair, x, k=10, chunk=3).log_px.isfinite().all()


def test_a_users_network_inside_a_built_in_guide_runs_interpreted():
    """A built-in program around a network of the user's own (which may branch in Python) is not traced."""
    from bayesvae.models.guides import NormalGuide

    class UsersEncoder(torch.nn.Module):
        out_features = 16

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 16)

        def forward(self, x):
            h = self.linear(x.flatten(-3))
            return h if float(h.mean()) > 0 else -h   # a branch on the data: a trace would freeze one side

    pair = _digits_pair()
    assert traceable(pair)
    pair.guide = NormalGuide(UsersEncoder(), latent_dim=3)
    assert not traceable(pair)
