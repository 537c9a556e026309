"""--logger mlflow, really run: ``bayesvae train --logger mlflow`` logs every epoch's metrics (the numbers of
metrics.csv, which is byte for byte the csv-only run's), the configuration and the findings into the file
store RUN/mlruns/; read back with MLflow's own client, never by parsing its files.

Needs ``mlflow`` or ``mlflow-skinny`` (the dev extra installs the skinny one) and Lightning; skipped without."""

import math

import pytest

from bayesvae.run import METRIC_COLUMNS

pytest.importorskip("mlflow")
pytest.importorskip("lightning")

TINY = ("--epochs", "2", "--latent-dim", "2", "--hidden", "16", "--device", "cpu", "--seed", "3")


def test_mlflow_logs_each_epoch_the_configuration_and_the_findings(cli, tmp_path):
    from mlflow.tracking import MlflowClient

    assert cli("train", *TINY, "--out", tmp_path / "csv").code == 0
    result = cli("train", *TINY, "--out", tmp_path / "run", "--logger", "mlflow")
    assert result.code == 0, result.err
    run_dir = tmp_path / "run"
    assert (run_dir / "metrics.csv").read_bytes() == (tmp_path / "csv" / "metrics.csv").read_bytes()
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(METRIC_COLUMNS) and len(lines) == 3
    rows = [dict(zip(METRIC_COLUMNS, map(float, line.split(",")))) for line in lines[1:]]

    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("bayesvae")
    [tracked] = client.search_runs([experiment.experiment_id])
    assert tracked.info.run_name == "run" and tracked.info.status == "FINISHED"
    for name in ("train_loss", "test_elbo", "test_log_likelihood", "test_kl", "beta"):
        logged = {m.step: m.value for m in client.get_metric_history(tracked.info.run_id, name)}
        assert sorted(logged) == [1, 2], name
        for row in rows:
            assert math.isclose(logged[int(row["epoch"])], row[name], rel_tol=1e-6, abs_tol=1e-6), name
    assert tracked.data.params["training.seed"] == "3" and tracked.data.params["training.epochs"] == "2"
    assert {"findings_problem", "findings_warning"} <= set(tracked.data.metrics)
    [artifact] = [a.path for a in client.list_artifacts(tracked.info.run_id)]
    assert artifact == "findings.txt"
    text = open(client.download_artifacts(tracked.info.run_id, artifact, str(tmp_path))).read()
    assert text.startswith("findings from the training curves")
    assert text.strip() in result.out   # the same findings the command printed
