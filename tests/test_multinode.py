"""--num-nodes 2 simulated on one machine: two "nodes" of one process each, started as a cluster launcher
starts them (the environment Lightning Fabric reads: MASTER_ADDR, MASTER_PORT, NODE_RANK; or torchrun
--nnodes 2 --node-rank r, twice), each in a folder of its own (as two machines without a shared disk
would be for a fresh run): both finish, node 1 writes nothing, and node 0's run has the parameters of a
2-process single-node run with the same seed (point-mass guide: no Monte Carlo noise, so equal up to
float rounding; the same check as tests/test_distributed.py, ~1e-6 seen).
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bayesvae.inference.checkpoint import load_checkpoint
from conftest import bayesvae_command

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="2 processes need 2 CPU cores")]
FLAGS = ["--guide", "delta", "--latent-dim", "2", "--hidden", "16", "--epochs", "2", "--batch-size", "64",
         "--seed", "5", "--device", "cpu"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_", "LOCAL_RANK", "RANK",
                                                                   "WORLD_SIZE", "GROUP_RANK", "NODE_RANK"))}
ENV |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_command(launcher: str, node: int, port: int) -> tuple[list[str], dict]:
    train = ["train", *FLAGS, "--devices", "1", "--num-nodes", "2", "--out", "run"]
    if launcher == "environment":   # what SLURM-like launchers set; Fabric's LightningEnvironment reads it
        return bayesvae_command() + train, {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                                            "NODE_RANK": str(node)}
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--nnodes", "2", "--nproc-per-node", "1",
                "--node-rank", str(node), "--master-addr", "127.0.0.1", "--master-port", str(port)]
    return torchrun + ["-m", "bayesvae.cli"] + train, ENV


@pytest.fixture(scope="module")
def single_node(tmp_path_factory):
    run = tmp_path_factory.mktemp("single-node") / "run"
    done = subprocess.run(bayesvae_command() + ["train", *FLAGS, "--devices", "2", "--out", str(run)],
                          env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return run


@pytest.mark.parametrize("launcher", ["environment", "torchrun"])
def test_two_nodes_train_the_single_node_parameters_and_node_0_alone_writes(tmp_path, single_node, launcher):
    port = free_port()
    nodes = []
    for node in (0, 1):
        (tmp_path / f"node{node}").mkdir()
        cmd, env = node_command(launcher, node, port)
        nodes.append(subprocess.Popen(cmd, env=env, cwd=tmp_path / f"node{node}", stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (out, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-2000:]
    assert list((tmp_path / "node1").iterdir()) == [], "node 1 wrote files"
    assert "trained 2 epochs" in outputs[0][0] and "trained" not in outputs[1][0]   # node 0 alone reports
    run = tmp_path / "node0" / "run"
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in single_node.iterdir())
    (two_nodes, _), (one_node, _) = (load_checkpoint(r / "checkpoint.safetensors") for r in (run, single_node))
    assert two_nodes.keys() == one_node.keys()
    worst = max(float((two_nodes[k] - one_node[k]).abs().max()) for k in two_nodes)
    assert worst < 1e-5, f"parameters differ by up to {worst}"
    assert (run / "metrics.csv").read_text().splitlines()[0] == (single_node / "metrics.csv").read_text().splitlines()[0]
