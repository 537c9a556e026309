"""Sections 4 and 5: AE vs VAE vs β across runs (code, objective, rate–distortion, latent space, pictures)
and why classes group without labels (probe numbers across runs). Numbers come from comparison.json
(``bayesvae compare``); pictures from the comparison folder or the run folders."""

from __future__ import annotations

from pathlib import Path

from .html import Section, code, figure, grid, missing, para, table
from .inputs import ResultSet, RunResults, finite
from .numbers import num
from .objectives import mean_spread, objective_text, prior_samples_caption, reconstruction_caption

SWEEP = "bayesvae sweep --guide normal,delta --beta 0,1,4 --latent-dim 2 --out runs/beta && bayesvae compare runs/beta"


def _compare_command(results: ResultSet) -> str:
    return "bayesvae compare " + " ".join(str(run.path) for run in results.runs)


def _picture(results: ResultSet, run: RunResults, comparison_name: str, run_name: str) -> Path | None:
    if results.comparison_dir is not None and results.row(run) is not None:
        path = results.comparison_dir / f"{results.row(run)['name'].replace('/', '_')}-{comparison_name}"
        if path.is_file():
            return path
    return run.file(run_name)


def _guide_diffs(results: ResultSet) -> list[str]:
    """The guide code of each distinct guide against the first run's (``bayesvae show --against``'s diff)."""
    from bayesvae.commands.show import diff_lines

    from .source import guide_source

    first = next((run for run in results.runs if run.guide == "normal"), results.runs[0])
    seen, out = {first.guide}, []
    for run in results.runs:
        if run.guide in seen:
            continue
        seen.add(run.guide)
        (a_name, a), (b_name, b) = guide_source(first), guide_source(run)
        lines = diff_lines(a, b, (f"{first.name}: {a_name}", f"{run.name}: {b_name}"))
        out.append(para(f"What changes in the code from {first.name} to {run.name}: only the guide q(z | x) "
                        f"(the model p(z) p(x | z) is the same program)." if lines else
                        f"{first.name} and {run.name} have the same guide code."))
        if lines:
            out.append(code(lines))
    return out


def _count(value) -> str:
    return "—" if value is None else str(value)


def _bounds_table(results: ResultSet) -> str:
    rows = []
    for run in results.runs:
        row = results.row(run) or {}
        rows.append([run.name, run.guide, f"{run.beta:g}", num(row.get("rate")), num(row.get("distortion")),
                     num(row.get("elbo")), num(row.get("log_px")), _count(row.get("active_units"))])
    return table(["run", "guide", "β", "rate R", "distortion D", "ELBO", "log p(x)", "active units"], rows)


def ae_vae_section(results: ResultSet) -> Section:
    section = Section("ae-vae-beta", "Autoencoder vs VAE vs β")
    section.add(table(["run", "guide", "β", "what training optimized"],
                      [[r.name, r.guide, f"{r.beta:g}", objective_text(r)] for r in results.runs], (3,)))
    if len(results.runs) == 1:
        section.add(missing("Comparing an autoencoder, a VAE and several β needs several runs", SWEEP))
    else:
        own = (results.comparison or {}).get("findings")
        if len(results.datasets) > 1:
            section.add(para(f"These runs were trained on different data sets ({', '.join(results.datasets)}): "
                             f"their numbers are not comparable, and this page does not rank them."))
        elif isinstance(own, dict) and own.get("rankable") is False:
            section.add(para("These runs score their images differently (likelihood or binarization): their log p(x) "
                             "are not comparable across the groups " + "; ".join(", ".join(g) for g in own.get("groups", []))
                             + ", and this page does not rank them."))
        section.add(*_guide_diffs(results))
        if results.comparison is None:
            section.add(missing("No comparison of these runs (rate–distortion, latent space by class)",
                                _compare_command(results)))
        else:
            section.add(para(f"Measured by bayesvae compare on the {results.comparison.get('split', 'test')} split "
                             f"({results.comparison.get('n_images')} images per run), nats per image, at β = 1 "
                             f"whatever β a run was trained with; — marks a quantity that is not defined (a "
                             f"point-mass guide has no rate, no ELBO and no log p(x) estimate)."), _bounds_table(results))
            section.add(*(para(f"note: {note}") for note in results.comparison.get("notes", [])))
            folder = results.comparison_dir
            if (folder / "rate_distortion.png").is_file():
                section.add(figure(folder / "rate_distortion.png", "rate–distortion plane",
                                   "Each dot is a run: x, its rate R (average KL, nats per image), y, its distortion D "
                                   "(−E_q log p(x|z), nats per image); dotted lines have equal ELBO = −(D + R). A "
                                   "point-mass guide has no rate and appears as a dashed horizontal line at its D."))
            if (folder / "latent.png").is_file():
                section.add(figure(folder / "latent.png", "latent means by class",
                                   "One panel per run: the posterior means E_q[z | x] of the test images (axes named "
                                   "under each panel; all panels share their limits, in the units of z), coloured by "
                                   "class; grey dots are draws from the prior p(z) in the same coordinates. Labels "
                                   "only colour the points."))
    pictures = []
    for run in results.runs:
        recon = _picture(results, run, "reconstructions.png", "reconstructions.png")
        prior = _picture(results, run, "prior-samples.png", "prior_samples.png")
        if recon is not None:
            pictures.append(figure(recon, f"{run.name}: reconstructions", reconstruction_caption(run)))
        if prior is not None:
            pictures.append(figure(prior, f"{run.name}: samples from the prior",
                                   prior_samples_caption(run, mean_spread(results.row(run), run))))
    return section.add(grid(pictures))


def _grouping_sentences(results: ResultSet, rows: list[tuple[RunResults, dict]]) -> list[str]:
    out = []
    for run, row in rows:
        knn, chance = finite(row.get("knn_accuracy")), finite(row.get("chance"))
        spread, active = finite(row.get("mean_spread")), row.get("active_units")
        if knn is None:
            continue
        if active == 0 or (spread is not None and spread < 0.05):
            out.append(f"{run.name}: its encoder is (nearly) constant (active units {active}, spread of the means "
                       f"{num(spread)}), so its probe accuracy {num(knn, 3)} is not evidence of grouping.")
        elif chance and knn > 2 * chance:
            out.append(f"{run.name}: a k-NN probe on the posterior means finds the right class for {100 * knn:.1f} % "
                       f"of test images (chance {100 * chance:.1f} %): images of one class get nearby codes.")
        else:
            out.append(f"{run.name}: k-NN accuracy {num(knn, 3)} against chance {num(chance, 3)}: little grouping.")
    grouped = [run for run, row in rows if finite(row.get("knn_accuracy")) and finite(row.get("chance"))
               and row["knn_accuracy"] > 2 * row["chance"] and row.get("active_units")]
    if grouped:
        out.append("Why, without labels: training only asks each code to help reconstruct its own image (and, with β "
                   "> 0, keeps the codes near the prior); digits of one class look alike, so they need similar codes. "
                   "Labels were used only here, to colour the plots and to fit and score the probes"
                   + "".join(f" (and {row['train_labels']} of them in training {run.name}, M2 --labels)"
                             for run, row in rows if row.get("train_labels")) + ".")
    if len(results.datasets) == 1 and len({run.beta for run, _ in rows}) > 1:
        by_beta = sorted(rows, key=lambda item: item[0].beta)
        out.append("Across β: " + ", ".join(f"β = {run.beta:g} ({run.guide}) k-NN {num(row.get('knn_accuracy'), 3)}, "
                                            f"silhouette {num(row.get('silhouette'), 3)}" for run, row in by_beta) + ".")
    return out


def grouping_section(results: ResultSet) -> Section:
    section = Section("grouping", "Why classes group without labels")
    rows = [(run, results.row(run)) for run in results.runs if results.row(run)]
    if rows:
        section.add(table(["run", "β", "active units", "spread of E_q[z]", "k-NN accuracy", "logistic accuracy",
                           "silhouette", "chance"],
                          [[run.name, f"{run.beta:g}", _count(row.get("active_units")), num(row.get("mean_spread")),
                            num(row.get("knn_accuracy"), 3), num(row.get("logistic_accuracy"), 3),
                            num(row.get("silhouette"), 3), num(row.get("chance"), 3)] for run, row in rows]))
        section.add(*(para(text) for text in _grouping_sentences(results, rows)))
        section.add(para("Caveats: the probes are fitted on the training split's posterior means and scored on the test "
                         "split's; k-NN measures local grouping, the logistic probe linear separability, and silhouette "
                         "(−1 to 1; near 0: classes overlap) the gap between and within classes. None of them says the "
                         "model knows what a class is."))
        if results.comparison_dir and (results.comparison_dir / "class_grouping.png").is_file():
            section.add(figure(results.comparison_dir / "class_grouping.png", "class grouping per run",
                               "Bars: the k-NN and logistic probe accuracies (fraction of test images, 0–1) and the "
                               "silhouette of each run's posterior means; compare them with chance."))
    else:
        section.add(missing("No probe numbers (k-NN, logistic, silhouette) for these runs", _compare_command(results)))
    means = []
    for run in results.runs:
        path = run.file("latent_means.png")
        if path is not None and run.anatomy is not None:
            where = ("in the two most active dimensions (axes in latent units)" if run.config["model"]["latent_dim"] > 1
                     else "along its one dimension (x axis, latent units; y axis, class)")
            means.append(figure(path, f"{run.name}: posterior means by class",
                                f"Each dot is one test image at its posterior mean E_q[z | x] {where}, coloured by its "
                                f"class label, which training {seen(run)}; contours: the prior's density."))
    return section.add(grid(means))


def seen(run) -> str:
    """What training saw of the labels: nothing, or (M2 --labels N) N of them."""
    labels = run.config.get("training", {}).get("labels")
    return f"saw for {labels} labelled images only (M2 --labels)" if labels else "never saw"
