"""compare's printed sentences are true for runs with a discrete class: the class columns appear when a run has
them, the bounds legend names what log p(x) and the gap are for such runs, and M2's training labels are owned up to."""

from bayesvae.analysis.compare_report import report_text


def row(name, **extra):
    return {"name": name, "latent_dim": 2, "elbo": -30.0, "rate": 5.0, "distortion": 25.0, "knn_accuracy": 0.5,
            "train_labels": 0, **extra}


def text(rows):
    return report_text({"runs": rows, "notes": [], "split": "test", "k": 100, "n_images": 360})


def test_plain_runs_keep_the_plain_sentences_and_no_class_columns():
    out = text([row("vae"), row("beta")])
    assert "labels used only here, never in training" in out
    assert "gap = log p(x) − ELBO ≈ KL(q(z|x) ‖ p(z|x))" in out and "without a discrete latent" not in out
    assert "q(y|x) acc" not in out and "cluster acc" not in out and "summed exactly" not in out


def test_mixture_and_m2_rows_get_their_scores_and_true_sentences():
    rows = [row("vae"),
            row("mixture", discrete_site="c", class_cluster_accuracy=0.397, class_cluster_accuracy_chance=0.178),
            row("m2", discrete_site="y", train_labels=100, class_accuracy=0.905, class_accuracy_chance=0.1)]
    out = text(rows)
    assert "never in training" not in out and "except in the training of m2 (100 labelled images)" in out
    assert "— for the runs without a discrete latent" in out
    assert "mixture, m2: the discrete class c summed exactly" in out and "KL(q(c,z|x) ‖ p(c,z|x))" in out
    header = next(line for line in out.splitlines() if line.startswith("run") and "k-NN acc" in line)
    assert "q(y|x) acc" in header and "cluster acc" in header
    lines = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in ("vae", "m2")}
    assert "0.905" in lines["m2"] and "0.100" in lines["m2"]


def test_only_discrete_runs_drop_the_plain_legend():
    out = text([row("m2", discrete_site="y", train_labels=0, class_accuracy=0.3, class_accuracy_chance=0.1)])
    assert "IWAE_K" not in out and "labels used only here, never in training" in out


def fake_run(model="builtin", labels=0):
    from types import SimpleNamespace
    return SimpleNamespace(config=SimpleNamespace(training=SimpleNamespace(beta=1.0, labels=labels),
                                                  model=SimpleNamespace(model=model, guide="normal")))


def test_latent_picture_owns_up_to_m2_labels_and_names_the_z_it_shows():
    from bayesvae.compare_pictures import legend_title, panel_note

    assert legend_title([("vae", fake_run()), ("mix", fake_run("mixture"))]) == "class (never used in training)"
    title = legend_title([("vae", fake_run()), ("m2", fake_run("m2", 100))])
    assert "never" not in title and "m2, 100 images" in title
    assert panel_note(fake_run(), {"discrete_site": None}) == "β = 1, guide normal"
    assert "E[z|x,y*], y* = argmax q(y|x)" in panel_note(fake_run("m2", 100), {"discrete_site": "y", "given_class": True})
    assert panel_note(fake_run("mixture"), {"discrete_site": "c", "given_class": False}).endswith("E_q[z|x]")


def test_report_captions_say_what_training_saw_of_the_labels():
    from types import SimpleNamespace

    from bayesvae.report.compare_section import seen

    assert seen(SimpleNamespace(config={"training": {"labels": 0}})) == "never saw"
    assert "100 labelled images" in seen(SimpleNamespace(config={"training": {"labels": 100}}))
