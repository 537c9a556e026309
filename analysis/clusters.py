"""Where classes live when the class is a latent variable: the posterior over the class, and how the
inferred classes line up with the true labels (labels used only here, after training).

Per image, from q(c | x) (or the importance-weighted p̂(c | x) of
:mod:`bayesvae.inference.evidence_discrete`):

    top class       argmax_c q(c | x)
    confidence      max_c q(c | x)
    entropy         H[q(c | x)] = −Σ_c q(c|x) log q(c|x), nats, in [0, log K]

Against the labels:

    accuracy (M2)   fraction with top class = label: q(y|x) is a classifier of the label itself
    cluster accuracy (mixture)  the best one-to-one matching of clusters to classes (Hungarian algorithm,
                    scipy's ``linear_sum_assignment`` on the cluster × class counts), then the fraction
                    matched; clusters left unmatched (K > classes) count as errors
    purity          Σ_c max_y n(c, y) / N: each cluster named by its majority class (K → N gives purity 1)
    chance          the same score for the same predictions against the labels shuffled (seeded): what
                    the cluster sizes alone achieve
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from bayesvae.models.errors import BadInput


def class_posterior_table(probs: torch.Tensor) -> pd.DataFrame:
    """One row per image of ``probs`` (N, K): ``top_class``, ``confidence``, ``entropy_nats``."""
    probs = probs.detach().double().cpu()
    entropy = -(probs * probs.clamp(min=1e-300).log()).sum(-1)
    confidence, top = probs.max(-1)
    return pd.DataFrame({"top_class": top.numpy(), "confidence": confidence.numpy(),
                         "entropy_nats": entropy.numpy()})


def contingency(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    clusters, classes = np.unique(pred, return_inverse=True), np.unique(labels, return_inverse=True)
    table = np.zeros((len(clusters[0]), len(classes[0])), dtype=np.int64)
    np.add.at(table, (clusters[1], classes[1]), 1)
    return table


def matched_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy after the best one-to-one cluster → class matching (Hungarian)."""
    table = contingency(pred, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(labels))


def purity(pred: np.ndarray, labels: np.ndarray) -> float:
    return float(contingency(pred, labels).max(1).sum() / len(labels))


def class_agreement(probs: torch.Tensor, labels: torch.Tensor | None, classifier: bool, seed: int = 0) -> dict:
    """Summary of the class posterior ``probs`` (N, K) and, with ``labels``, its agreement with them.

    ``classifier=True`` (M2): ``accuracy`` = top class equals the label. False (mixture): ``cluster_accuracy``
    (Hungarian) and ``purity``. Each with its ``*_chance`` (labels shuffled with ``seed``).
    """
    table = class_posterior_table(probs)
    k = probs.shape[-1]
    out = {"images": len(table), "classes": k, "mean_entropy_nats": float(table.entropy_nats.mean()),
           "max_entropy_nats": math.log(k), "mean_confidence": float(table.confidence.mean()),
           "classes_used": int(table.top_class.nunique())}
    if labels is None:
        return out
    pred, y = table.top_class.to_numpy(), labels.detach().cpu().numpy()
    if len(y) != len(pred):
        raise BadInput(f"{len(y)} labels for {len(pred)} images")
    shuffled = np.random.default_rng(seed).permutation(y)
    if classifier:
        out.update(accuracy=float((pred == y).mean()), accuracy_chance=float((pred == shuffled).mean()))
    else:
        out.update(cluster_accuracy=matched_accuracy(pred, y), cluster_accuracy_chance=matched_accuracy(pred, shuffled),
                   purity=purity(pred, y), purity_chance=purity(pred, shuffled))
    return out
