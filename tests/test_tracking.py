"""--logger: Lightning's TensorBoard logger receives every epoch's metrics (the same numbers as metrics.csv,
whose format does not change) and the findings; a missing optional package is one line, exit 2, nothing written."""

import importlib.util
import math

import pytest

import bayesvae
from bayesvae.run import METRIC_COLUMNS
from conftest import tree_snapshot

quiet = dict(device="cpu", progress=False, log=lambda _: None)


def test_tensorboard_logs_each_epoch_and_the_findings(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    bayesvae.fit(out=run_dir, epochs=2, latent_dim=2, hidden=(16,), logger="tensorboard", **quiet)
    bayesvae.resume(run_dir, epochs=3, logger="tensorboard", **quiet)   # appends epoch 3
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(METRIC_COLUMNS) and len(lines) == 4
    rows = [dict(zip(METRIC_COLUMNS, map(float, line.split(",")))) for line in lines[1:]]

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    for name in ("train_loss", "test_elbo", "test_kl", "beta"):
        logged = {e.step: e.value for e in events.Scalars(name)}
        assert sorted(logged) == [1, 2, 3]
        for row in rows:
            assert math.isclose(logged[int(row["epoch"])], row[name], rel_tol=1e-6, abs_tol=1e-6)
    assert {"findings_problem", "findings_warning"} <= set(events.Tags()["scalars"])
    assert any("findings" in tag for tag in events.Tags()["tensors"])   # the findings text (add_text)


@pytest.mark.parametrize("logger, package", [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_missing_logger_package_is_one_line_and_nothing_written(cli, tmp_path, monkeypatch, logger, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    before = tree_snapshot(tmp_path)
    result = cli("train", "--epochs", "1", "--device", "cpu", "--out", tmp_path / "run", "--logger", logger)
    assert result.code == 2 and result.err.count("\n") == 1
    assert f"pip install 'bayesvae[{package}]'" in result.err
    assert tree_snapshot(tmp_path) == before


def test_unknown_logger_and_in_memory_tracking_are_refused(cli, tmp_path):
    result = cli("train", "--epochs", "1", "--device", "cpu", "--out", tmp_path / "run", "--logger", "wandb")
    assert result.code == 2 and "unknown --logger 'wandb'" in result.err and not (tmp_path / "run").exists()
    if importlib.util.find_spec("tensorboard") is not None:
        with pytest.raises(bayesvae.models.errors.BadInput, match="writes into the run folder"):
            bayesvae.fit(out=None, epochs=1, logger="tensorboard", **quiet)
