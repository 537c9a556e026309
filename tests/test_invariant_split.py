"""Splitting a graph into what is the same at every call and the rest: same numbers, nothing random moved."""

import warnings

import pyro
import torch

from bayesvae.inference.compiled import CompiledLogWeights
from bayesvae.inference.invariant_split import split_invariant
from bayesvae.models.build import ModelSpec, build_pair


def _traced(fn, *inputs) -> torch._C.Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(fn, inputs, check_trace=False).graph


def _kinds(graph: torch._C.Graph) -> list[str]:
    return [node.kind() for node in graph.nodes() if node.kind() != "prim::Constant"]


def test_the_fixed_part_is_moved_and_the_draws_stay():
    def fn(w, x):
        return (x @ w).exp().sum(-1) + torch.randn(3)
    w, x = torch.randn(4, 5), torch.randn(3, 4)
    graph = _traced(fn, w, x)
    split = split_invariant(graph, "test")
    assert split is not None and split.hoisted >= 3
    assert "aten::matmul" not in _kinds(split.rest.graph) and "aten::exp" not in _kinds(split.rest.graph)
    assert any(node.isNondeterministic() for node in split.rest.graph.nodes())
    original = torch._C._create_function_from_graph("original", graph.copy())
    torch.manual_seed(3)
    expected = original(w, x)
    torch.manual_seed(3)
    assert torch.equal(split(w, x), expected)


def test_nothing_fixed_or_in_place_is_left_alone():
    assert split_invariant(_traced(lambda x: x + torch.randn(3), torch.zeros(3)), "draws") is None

    def in_place(x):
        y = x * 2
        y.add_(1)
        return y + torch.randn(3)
    assert split_invariant(_traced(in_place, torch.zeros(3)), "in_place") is None


def test_the_mlp_pairs_chunks_run_the_decoder_and_not_the_encoder():
    """The guide's encoder and the Bernoulli's sign 2x − 1 depend on the images only: the per-chunk graph
    no longer reads the images, and runs the decoder's two linear layers only."""
    torch.manual_seed(0)
    pair = build_pair(ModelSpec(latent_dim=3, hidden=(16,)), (1, 8, 8))
    x = torch.bernoulli(torch.full((5, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(1))
    pair.initialize(x)
    log_weights = CompiledLogWeights(pair)
    with pair.active(), torch.no_grad(), pyro.validation_enabled(False):
        log_weights.for_images(x)(7)
    [(graph, split)] = log_weights.graphs.values()
    rest = split.rest.graph
    images = list(rest.inputs())[len(graph.param_names)]
    assert images.type().sizes() == [5, 1, 8, 8] and not images.uses()
    assert _kinds(rest).count("aten::linear") == 2 == _kinds(graph.fn.graph).count("aten::linear") - 3
