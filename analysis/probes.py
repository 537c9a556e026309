"""How strongly classes group in the latent space, measured on posterior means E_q[z | x].

Nothing in training sees a label; they are used only here, after the fact:

* k-NN probe (k = 5): a test image's class is the majority class of its 5 nearest training codes
  (Euclidean); accuracy on the test split. High when same-class codes sit together locally.
* logistic-regression probe: a linear classifier on standardized codes, fitted on the training split,
  accuracy on the test split. High when classes are linearly separable in z.
* silhouette score by class on the test codes, in [−1, 1]: (b − a) / max(a, b) per point, a = mean
  distance to its own class, b = to the nearest other class. Near 0: classes overlap; near 1: tight,
  well separated clusters. Invariant to a common rescaling of z (an AE's wide codes are not favoured).

``chance`` is the accuracy of always guessing the most frequent test class.
"""

from __future__ import annotations

import numpy as np
import torch

from bayesvae.models.errors import BadInput


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def class_grouping(train_means: torch.Tensor, train_labels: torch.Tensor, test_means: torch.Tensor,
                   test_labels: torch.Tensor, k: int = 5, seed: int = 0) -> dict:
    """``{"knn_accuracy", "logistic_accuracy", "silhouette", "chance", "classes", "k"}`` (accuracies in [0, 1])."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = _numpy(train_means), _numpy(test_means)
    y_train, y_test = train_labels.cpu().numpy(), test_labels.cpu().numpy()
    classes = np.unique(y_train)
    if len(classes) < 2 or len(np.unique(y_test)) < 2:
        raise BadInput("class grouping needs at least two classes in both the training and the test labels")
    if x_train.shape[0] < k:
        raise BadInput(f"the k-NN probe needs at least k = {k} training images, got {x_train.shape[0]}")
    knn = KNeighborsClassifier(n_neighbors=k).fit(x_train, y_train)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    logistic.fit(x_train, y_train)
    _, counts = np.unique(y_test, return_counts=True)
    return {
        "knn_accuracy": float(knn.score(x_test, y_test)),
        "logistic_accuracy": float(logistic.score(x_test, y_test)),
        "silhouette": float(silhouette_score(x_test, y_test)),
        "chance": float(counts.max() / counts.sum()),
        "classes": int(len(classes)),
        "k": k,
    }
