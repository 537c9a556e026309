"""M2 uses its unlabelled images: on digits with 100 labels, at the setting the README reports (150 epochs, 50-D z,
500 hidden units, α = 10), q(y|x) beats its own network trained on the 100 labels alone (best of three training
lengths, chosen with the test labels: generous to the baseline). Slow: about 5 minutes on one core."""

import pytest

from bayesvae.m2_check import compare


@pytest.mark.slow
def test_m2_beats_the_labels_only_classifier_on_digits():
    result = compare(labels=100, seed=0)
    assert result["m2_accuracy"] > result["baseline_accuracy"], result
    # the mechanism: the unlabelled bound pulls q(y|x) towards the generative model's own classifier
    assert result["m2_generative_accuracy"] > result["baseline_accuracy"], result
