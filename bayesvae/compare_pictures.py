"""The pictures of a comparison folder: rate–distortion plane, latent means by class (PCA, optional t-SNE),
class-grouping bars, and per run its reconstructions, prior samples and latent traversals."""

from __future__ import annotations

from pathlib import Path

from bayesvae.analysis.latent_space import manifold_grid, prior_draws, project, traversal

from .run import Run


def draw(out: Path, named: list[tuple[str, Run]], extras: list[dict], tsne: bool) -> list[Path]:
    """Every picture of the comparison folder (see the module docstring); returns the files written."""
    from bayesvae.analysis.plots_compare import plot_class_grouping, plot_latent_panels, plot_rate_distortion
    from bayesvae.analysis.samples import save_grid, save_prior_samples, save_reconstructions

    names = [name for name, _ in named]
    files = [out / "rate_distortion.png"]
    plot_rate_distortion(names, [e["point"] for e in extras], files[-1])
    projections = [("pca", "latent.png", "posterior means E_q[z|x] by class; grey: draws from the prior p(z)")]
    if tsne:
        projections.append(("tsne", "latent_tsne.png", "posterior means E_q[z|x] by class, t-SNE"))
    for method, filename, title in projections:
        panels = []
        for (name, run), e in zip(named, extras):
            draws = prior_draws(run.pair, e["x"]) if method == "pca" else None
            xy, prior_xy, axes = project(e["means"], method, extra=draws)
            panels.append({"name": name, "xy": xy, "prior_xy": prior_xy, "axes": axes,
                           "labels": None if e["labels"] is None else e["labels"].cpu().numpy(),
                           "note": panel_note(run, e)})
        files.append(out / filename)
        plot_latent_panels(panels, files[-1], title, shared=method == "pca",   # PCA keeps the units of z
                           legend=legend_title(named))
    if any(e["grouping"] for e in extras):
        files.append(out / "class_grouping.png")
        plot_class_grouping(names, [e["grouping"] for e in extras], files[-1])
    for (name, run), e in zip(named, extras):
        stem = name.replace("/", "_")
        files.append(out / f"{stem}-reconstructions.png")
        save_reconstructions(run.pair, e["x"], files[-1])
        files.append(out / f"{stem}-prior-samples.png")
        save_prior_samples(run.pair, e["x"], files[-1])
        if e["means"].shape[1] == 2:
            files.append(out / f"{stem}-manifold.png")
            save_grid(manifold_grid(run.pair, e["means"], e["x"]), files[-1], nrow=15)
        else:
            dims = [int(u) for u in e["activity"].argsort(descending=True)[:min(6, e["means"].shape[1])]]
            files.append(out / f"{stem}-traversal.png")
            save_grid(traversal(run.pair, e["means"], e["x"], dims), files[-1], nrow=11)
    return files


def panel_note(run: Run, extra: dict) -> str:
    """β and the guide; for a run with a discrete class, the model and which z the means are of."""
    note = f"β = {run.config.training.beta:g}, guide {run.config.model.guide}"
    if extra.get("discrete_site"):
        site, model = extra["discrete_site"], run.config.model.model
        given = f"E[z|x,{site}*], {site}* = argmax q({site}|x)" if extra.get("given_class") else "E_q[z|x]"
        note = f"{model}, {note}; {given}"
    return note


def legend_title(named: list[tuple[str, Run]]) -> str:
    """The class legend: never used in training, unless a run (M2 --labels N) was trained with some labels."""
    trained = [f"{name}, {run.config.training.labels} images" for name, run in named if run.config.training.labels]
    if not trained:
        return "class (never used in training)"
    return f"class (labels used in training only by {'; '.join(trained)})"
