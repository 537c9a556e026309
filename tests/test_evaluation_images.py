"""The fixed evaluation binarization is drawn on the CPU: every run of a data set is scored on the same
binary images, whatever device it was trained or diagnosed on."""

import pytest
import torch

from bayesvae.inference.batches import EVALUATION_SEED, binarize, evaluation_images


def test_evaluation_images_are_the_cpu_draw_of_seed_0(digits):
    x = digits.test_x
    expected = binarize(x, torch.Generator().manual_seed(EVALUATION_SEED))
    assert torch.equal(evaluation_images(x, "fixed"), expected)
    assert torch.equal(evaluation_images(x, "dynamic"), expected)     # evaluation is fixed for every training mode
    assert evaluation_images(x, "none") is x
    # a genuine Bernoulli draw of the grey levels: 0/1 pixels whose mean follows the grey level
    assert set(torch.unique(expected).tolist()) <= {0.0, 1.0}
    assert abs(float(expected.mean() - x.mean())) < 0.01


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_are_scored_on_the_cpu_images(digits):
    x = digits.test_x
    on_gpu = evaluation_images(x.cuda(), "fixed")
    assert on_gpu.device.type == "cuda" and torch.equal(on_gpu.cpu(), evaluation_images(x, "fixed"))
