"""Does M2 use its unlabelled images? Test accuracy of q(y|x) against the same classifier trained on the labels alone.

    python -m bayesvae.m2_check --labels 100 --seed 0 1 2     # digits, 150 epochs, z 50, 500 hidden units

Per seed (which picks the labelled images and the initialization): trains M2 (``bayesvae.fit("m2",
labels=N, ...)``, the training of ``bayesvae train --model m2 --labels N``), then M2's own classifier network,
from the same initialization, on the N labelled images alone (:mod:`bayesvae.inference.supervised_baseline`,
three training lengths, the best one reported — generous to the baseline, since test labels choose it).
Also scores M2's generative model as a classifier, argmax_y L(x, y) with L the ELBO of (x, y) (16 draws of z):
the unlabelled bound U pulls q(y|x) towards this posterior, so M2 can only gain where it is the better
classifier. Prints one JSON object: per seed both test accuracies, M2's test error in % next to Kingma et al.
(2014)'s Table 1, the seconds each took; and over the seeds the mean and range of M2 − baseline.
"""

from __future__ import annotations

import argparse
import json
import time

import pyro
import torch

from bayesvae.api import fit
from bayesvae.inference.batches import evaluation_images
from bayesvae.inference.enumerated_terms import class_terms
from bayesvae.inference.semi_supervised import choose_labelled
from bayesvae.inference.supervised_baseline import train_supervised_classifier
from bayesvae.models.discrete_sites import LABEL

KINGMA_2014_M2_ERROR = {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92}
"""Kingma et al. (2014), Table 1: M2's test error (%) on MNIST, 50,000 training images, by number of labels."""


def accuracy(classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((classifier(x).probs.argmax(-1) == y).float().mean())


@torch.no_grad()
def generative_accuracy(pair, x: torch.Tensor, y: torch.Tensor, samples: int = 16, batch_size: int = 200) -> float:
    """Accuracy of argmax_y L(x, y), L(x, y) = E_q(z|x,y)[log p(x, y, z) − log q(z|x, y)] (``samples`` draws):
    M2's generative model p(x | y, z) used as a classifier, q(y|x) left out."""
    with pair.active():
        best = [class_terms(pair, xb, LABEL, samples).log_weight.mean(1).argmax(0) for xb in x.split(batch_size)]
    return float((torch.cat(best) == y).float().mean())


def compare(labels: int = 100, epochs: int = 150, dataset: str = "digits", data_dir: str | None = None,
            likelihood: str = "continuous-bernoulli", latent_dim: int = 50, hidden: int = 500, alpha: float = 10.0,
            seed: int = 0, baseline_steps=(100, 300, 1000)) -> dict:
    """Train M2 and the labels-only baseline for one seed; return their test accuracies (module docstring)."""
    binarize = "dynamic" if likelihood == "bernoulli" else "none"
    pyro.set_rng_seed(seed)
    started = time.perf_counter()
    run = fit("m2", data=dataset, data_dir=data_dir, labels=labels, epochs=epochs, alpha=alpha, seed=seed,
              likelihood=likelihood, binarize=binarize, latent_dim=latent_dim, hidden=(hidden,), elbo="mc",
              device="cpu", progress=False, log=lambda _: None)
    m2_seconds = time.perf_counter() - started
    data = run.data
    test_x = evaluation_images(data.test_x, binarize)
    with run.pair.active():
        m2 = accuracy(run.pair.guide.class_posterior, test_x, data.test_y)
    generative = generative_accuracy(run.pair, test_x, data.test_y)
    labelled = choose_labelled(data.train_y, labels, seed)
    baseline = {}
    started = time.perf_counter()
    for steps in baseline_steps:
        classifier = train_supervised_classifier(run.config.model, data.image_shape, data.train_x, labelled,
                                                 steps=steps, seed=seed, binarized=binarize != "none")
        baseline[steps] = accuracy(classifier, test_x, data.test_y)
    best = max(baseline.values())
    return {"dataset": dataset, "train_images": data.train_x.shape[0], "test_images": data.test_x.shape[0],
            "labels": labels, "epochs": epochs, "likelihood": likelihood, "latent_dim": latent_dim, "hidden": hidden,
            "alpha": alpha, "seed": seed, "m2_accuracy": m2, "m2_error_percent": 100 * (1 - m2),
            "m2_generative_accuracy": generative,
            "baseline_accuracy": best, "baseline_by_steps": baseline, "m2_minus_baseline": m2 - best,
            "kingma_2014_m2_error_percent": KINGMA_2014_M2_ERROR.get(labels),
            "m2_seconds": m2_seconds, "baseline_seconds": time.perf_counter() - started}


def summary(results: list[dict]) -> dict:
    """Mean and range over seeds of both accuracies and of M2 − baseline."""
    out = {"seeds": [r["seed"] for r in results]}
    for key in ("m2_accuracy", "m2_generative_accuracy", "baseline_accuracy", "m2_minus_baseline"):
        values = torch.tensor([r[key] for r in results], dtype=torch.float64)
        out[key] = {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--likelihood", default="continuous-bernoulli")
    # Kingma et al. (2014) and Pyro's ss_vae_M2.py: 50-D z, 500 hidden units (README: 256/16 lost to the baseline)
    parser.add_argument("--latent-dim", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds, each a full run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [compare(args.labels, args.epochs, args.dataset, args.data_dir, args.likelihood, args.latent_dim,
                       args.hidden, args.alpha, seed) for seed in args.seed]
    print(json.dumps({"runs": results, "summary": summary(results)}, indent=1))


if __name__ == "__main__":
    main()
