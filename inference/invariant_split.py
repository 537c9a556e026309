"""Split a traced graph into the part that is the same at every call and the part that is not.

The evidence scores a block of images with one graph called K / chunk times (40 for K = 1000): the
images and the parameters stay the same, only the graph's random draws change. Every operation whose
inputs are graph inputs, constants or results of such operations, and which draws nothing, returns the
same values at each of those calls: for the MLP pair the guide's encoder on x (its matrix products, q's
loc and scale, log σ and σ² expanded to the draws' shape) and the Bernoulli's sign 2x − 1. Splitting them
off into a graph of their own, run once per block, leaves the per-chunk graph with the draws, the decoder
and the densities: the same operations on the same values, so the same numbers bit for bit.

Written here because TorchScript moves loop-invariant code only out of loops inside one graph (and its
profiling executor, which bayesvae does not use, see :mod:`.compiled`), never across calls of a graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class InvariantSplit:
    """``fixed_values(*inputs)`` → the values the rest needs; ``rest(*inputs, *those values)`` → the
    original graph's outputs."""

    fixed: torch._C.ScriptFunction
    rest: torch._C.ScriptFunction
    hoisted: int            # operations moved into ``fixed``

    def fixed_values(self, *inputs) -> tuple:
        values = self.fixed(*inputs)
        return values if isinstance(values, tuple) else (values,)

    def __call__(self, *inputs):
        """Both parts in one call (tests; the evidence runs ``fixed`` once per block of images)."""
        return self.rest(*inputs, *self.fixed_values(*inputs))


def split_invariant(graph: torch._C.Graph, name: str) -> InvariantSplit | None:
    """The split of ``graph`` (not modified), or None where nothing can be moved (no invariant tensor that
    the rest uses) or must not be (an in-place operation, whose result could alias, or an operation with
    sub-blocks). Only tensors cross from one part to the other; an invariant number or list the rest
    needs is computed there again (from constants or from tensors it is given)."""
    nodes = list(graph.nodes())
    if any(node.kind().endswith("_") or list(node.blocks()) for node in nodes):
        return None
    fixed_values = _invariant_values(graph, nodes)
    needed = [(n, o) for n, node in enumerate(nodes) if node.kind() != "prim::Constant"
              for o, value in enumerate(node.outputs())
              if value.unique() in fixed_values and isinstance(value.type(), torch._C.TensorType)
              and _used_beyond(value, fixed_values)]
    if not needed:
        return None
    fixed_graph, rest_graph = graph.copy(), graph.copy()
    _keep_only(fixed_graph, [list(fixed_graph.nodes())[n].outputsAt(o) for n, o in needed])
    rest_nodes = list(rest_graph.nodes())
    for n, o in needed:
        value = rest_nodes[n].outputsAt(o)
        given = rest_graph.addInput()
        given.setType(value.type())
        value.replaceAllUsesWith(given)
    torch._C._jit_pass_dce(rest_graph)
    hoisted = len(nodes) - len(list(rest_graph.nodes()))
    if any(node.isNondeterministic() for node in fixed_graph.nodes()):
        raise AssertionError("a random operation was moved out of the per-call graph")
    return InvariantSplit(torch._C._create_function_from_graph(f"{name}_fixed", fixed_graph),
                          torch._C._create_function_from_graph(f"{name}_rest", rest_graph), hoisted)


def _invariant_values(graph: torch._C.Graph, nodes: list[torch._C.Node]) -> set[int]:
    """The ``unique()`` ids of the values that are the same at every call with the same inputs."""
    fixed = {value.unique() for value in graph.inputs()}
    for node in nodes:
        if not node.isNondeterministic() and all(value.unique() in fixed for value in node.inputs()):
            fixed.update(value.unique() for value in node.outputs())
    return fixed


def _used_beyond(value: torch._C.Value, fixed_values: set[int]) -> bool:
    """``value`` is read by an operation that varies between calls, or returned."""
    return any(use.user.kind() == "prim::Return" or
               any(output.unique() not in fixed_values for output in use.user.outputs())
               for use in value.uses())


def _keep_only(graph: torch._C.Graph, outputs: list[torch._C.Value]) -> None:
    """Make ``outputs`` the graph's outputs (as one tuple) and remove what they do not need."""
    while len(list(graph.outputs())):
        graph.eraseOutput(0)
    for value in outputs:
        graph.registerOutput(value)
    graph.makeMultiOutputIntoTuple()
    torch._C._jit_pass_dce(graph)
