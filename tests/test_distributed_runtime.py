"""The data-parallel runtime's arithmetic, in one process with a stand-in for Fabric's all-reduce: the
gradients and loss are summed over ranks (not averaged), in the same parameter order on every rank, and
one rank's interrupt flag stops every rank."""

import threading

import pyro
import torch

from bayesvae.inference.distributed import DataParallel


class TwoRanks:
    """Fabric's ``all_reduce(sum)`` as rank 0 of two would see it: its buffer plus ``other``'s."""

    global_rank, world_size, device = 0, 2, "cpu"

    def __init__(self, other: torch.Tensor):
        self.other, self.sent = other, []

    def all_reduce(self, data, reduce_op="mean"):
        assert reduce_op == "sum"
        self.sent.append(data.clone())
        return data + self.other


def test_gradients_loss_and_stop_flag_are_summed_over_ranks():
    pyro.clear_param_store()
    a = pyro.param("a", torch.tensor([1.0, 2.0])).unconstrained()
    b = pyro.param("b", torch.tensor([[3.0]])).unconstrained()
    a.grad, b.grad = torch.tensor([0.5, -1.0]), torch.tensor([[2.0]])
    # the other rank's buffer: grads of a (2), b (1), its loss, its interrupt flag (set there only)
    other = torch.tensor([0.25, 0.5, 1.0, 7.0, 1.0])
    fabric = TwoRanks(other)
    runtime = DataParallel(fabric)
    flag = threading.Event()
    runtime.watch(flag)
    loss = runtime.share_gradients(torch.tensor(3.0), [b, a])   # any order in: name order on the wire
    assert torch.equal(fabric.sent[0], torch.tensor([0.5, -1.0, 2.0, 3.0, 0.0]))
    assert torch.equal(a.grad, torch.tensor([0.75, -0.5])) and torch.equal(b.grad, torch.tensor([[3.0]]))
    assert float(loss) == 10.0                       # the global batch's −objective: 3 + 7
    assert runtime.agreed_stop(flag) and not flag.is_set()   # stopped by the other rank's flag


def test_a_rank_shares_its_part_of_each_batch():
    runtime = DataParallel(TwoRanks(torch.zeros(1)))
    assert runtime.share(torch.arange(7)).tolist() == [0, 1, 2, 3] and runtime.writer
