"""The benchmarks keep working (quick mode, no speed asserted) and compare like with like.

Speed itself is never asserted here: ``python -m benchmarks.run`` measures it as ratios.
"""

import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import run as bench  # noqa: E402
from benchmarks.handwritten_vae import HandWrittenVAE  # noqa: E402
from benchmarks.svi_overhead import bayesvae_pair  # noqa: E402

from bayesvae.inference.objectives import make_elbo  # noqa: E402


def same_weights(net: str):
    """Images, bayesvae's pair and the hand-written VAE holding the same weights."""
    x = torch.bernoulli(torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.5)
    pair = bayesvae_pair(net, (1, 28, 28))
    hand = HandWrittenVAE(net, (1, 28, 28), (400,), 50)
    for part, source in ((hand.encoder, pair.guide.encoder), (hand.loc, pair.guide.loc),
                         (hand.scale, pair.guide.scale), (hand.decoder, pair.model.decoder)):
        part.load_state_dict(source.state_dict())
    return x, pair, hand


@pytest.mark.parametrize("net", ["mlp", "conv"])
@pytest.mark.parametrize("objective", ["mc", "analytic"])
def test_the_hand_written_baseline_computes_bayesvaes_loss(net, objective):
    """Same weights, same noise: the plain PyTorch loss equals Pyro's ELBO loss (so the ratio compares
    two implementations of one computation)."""
    x, pair, hand = same_weights(net)
    torch.manual_seed(1)
    expected = hand.loss(x, objective).item()
    with pair.active():
        torch.manual_seed(1)
        loss = make_elbo(objective).differentiable_loss(pair.model, pair.guide, x).item()
    assert loss == pytest.approx(expected, rel=1e-5)
    torch.manual_seed(2)  # and a different draw gives a different loss: the noise is really shared above
    assert hand.loss(x, objective).item() != pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_the_hand_written_iwae_computes_pyros_renyi_elbo(net):
    """IWAE_K with K = 5: the plain PyTorch loss equals RenyiELBO(alpha=0)'s at the same weights and noise."""
    x, pair, hand = same_weights(net)
    torch.manual_seed(1)
    expected = hand.loss(x, "iwae", particles=5).item()
    with pair.active():
        torch.manual_seed(1)
        loss = make_elbo("iwae", 5).loss(pair.model, pair.guide, x)
    assert loss == pytest.approx(expected, rel=1e-5)
    torch.manual_seed(1)
    assert hand.loss(x, "iwae", particles=50).item() < expected     # more particles, tighter bound (here)


def _table(text: str, heading: str) -> list[list[str]]:
    """The body rows (cells) of the first markdown table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start + 2:]:  # after the header and the |---| line
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    return table


def _number(cell: str) -> float:
    return float(re.search(r"-?\d[\d,]*\.?\d*", cell).group().replace(",", ""))


@pytest.mark.bench
def test_quick_mode_runs_every_benchmark_and_writes_well_formed_results(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    fast = [name for name in bench.BENCHMARKS if name != "scaleout"]   # scaleout: its own (slow) test below
    assert bench.main(["--quick", "--threads", "1", "--out", str(out), "--only", *fast]) == 0
    text = out.read_text()
    assert "| CPU |" in text and "| torch |" in text and "| pyro-ppl |" in text
    assert "Data: " in text

    svi = _table(text, "## 1. SVI overhead")
    assert {(row[0], row[1]) for row in svi} == {(o, n) for o in ("mc", "analytic") for n in ("mlp", "conv")}
    for row in svi:
        hand_seconds, bayesvae_seconds, ratio = _number(row[4]), _number(row[5]), _number(row[6])
        assert hand_seconds > 0 and bayesvae_seconds > 0 and ratio > 0
    assert "pyro, plain" in text and "Target ≤ 1.05 at every objective" in text
    iwae = _table(text, "IWAE (`--elbo iwae`")
    assert [(row[0], row[1]) for row in iwae] == [("iwae", "5"), ("iwae", "50")]
    assert all(_number(row[5]) > 0 and _number(row[6]) > 0 and _number(row[7]) > 0 for row in iwae)
    assert "Target ≤ 1.1 at K = 5" in text and "Target ≤ 1.1 at K = 50" in text

    evaluation = _table(text, "## 2. Evaluation throughput")
    assert [row[0] for row in evaluation] == ["log p(x), importance sampling", "aggregate posterior (MI, marginal KL)"]
    assert all(_number(row[4]) > 0 and _number(row[6]) > 0 for row in evaluation)

    coverage = _table(text, "## 2b. Evidence error bars")
    assert len(coverage) == 4 and all(0 <= _number(row[3].strip("*")) <= 1 for row in coverage)
    assert "| GPU |" in text

    (data,) = _table(text, "## 3. Data pipeline")
    assert 0 < _number(data[4]) < 100
    (stream,) = _table(text, "## 3b. Streaming loader")
    assert stream[2] == "2" and 0 < _number(stream[5]) < 100 and "Target < 10 % of the epoch" in text

    memory = _table(text, "## 4. Memory")
    assert [row[0] for row in memory] == ["training", "evidence"]
    assert all(_number(row[6]) >= _number(row[5]) > 0 for row in memory)  # peak ≥ after set-up


@pytest.mark.slow
@pytest.mark.bench
def test_quick_scale_out_benchmark_reports_both_process_counts(tmp_path):
    out = tmp_path / "RESULTS.md"
    assert bench.main(["--quick", "--threads", "1", "--out", str(out), "--only", "scaleout"]) == 0
    rows = _table(out.read_text(), "## 6. Data-parallel training")
    assert [row[0] for row in rows] == ["1", "2"] and _number(rows[0][4]) == 1.0
    assert all(_number(row[3]) > 0 and _number(row[2]) >= 1 for row in rows)
