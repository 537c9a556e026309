"""The Bernoulli likelihood's broadcast scoring path equals torch's Bernoulli log-density."""

import pytest
import torch

import pyro.distributions as dist

from bayesvae.models.likelihoods import Bernoulli, BernoulliLikelihood


def _reference(logits, pixels):
    return dist.Bernoulli(logits=logits, validate_args=False).to_event(3).log_prob(pixels)


@pytest.mark.parametrize("scale", [0.1, 3.0, 60.0])
def test_broadcast_scoring_equals_torch_for_binary_pixels(scale):
    generator = torch.Generator().manual_seed(0)
    logits = scale * torch.randn(7, 5, 1, 6, 6, generator=generator)      # K draws × 5 images
    pixels = (torch.rand(5, 1, 6, 6, generator=generator) < 0.3).float()
    with torch.no_grad():
        fast = BernoulliLikelihood()(logits).log_prob(pixels)
    assert fast.shape == (7, 5)
    torch.testing.assert_close(fast, _reference(logits, pixels), rtol=1e-5, atol=1e-4)


def test_one_draw_per_image_gives_torch_numbers_bit_for_bit():
    """Without a broadcast (the test ELBO's single draw) a user's plain dist.Bernoulli scores exactly alike."""
    generator = torch.Generator().manual_seed(2)
    logits = 5 * torch.randn(1, 9, 1, 6, 6, generator=generator)  # one draw of 9 images, a leading draw dim
    pixels = (torch.rand(9, 1, 6, 6, generator=generator) < 0.4).float()
    with torch.no_grad():
        assert torch.equal(BernoulliLikelihood()(logits).log_prob(pixels), _reference(logits, pixels))


def test_grey_pixels_outside_the_support_keep_torch_value_without_validation():
    generator = torch.Generator().manual_seed(1)
    logits, grey = torch.randn(3, 4, 1, 5, 5, generator=generator), torch.rand(4, 1, 5, 5, generator=generator)
    with torch.no_grad():
        fast = Bernoulli(logits=logits, validate_args=False).to_event(3).log_prob(grey)
    torch.testing.assert_close(fast, _reference(logits, grey))


def test_validation_still_refuses_grey_pixels_on_the_broadcast_path():
    with torch.no_grad(), pytest.raises(ValueError):
        Bernoulli(logits=torch.zeros(2, 3, 4), validate_args=True).log_prob(torch.full((3, 4), 0.5))


def test_gradients_take_torch_path_and_agree():
    logits = torch.randn(4, 2, 1, 3, 3, requires_grad=True)
    pixels = (torch.rand(2, 1, 3, 3) < 0.5).float()
    Bernoulli(logits=logits).to_event(3).log_prob(pixels).sum().backward()
    expected = torch.autograd.grad(_reference(logits, pixels).sum(), logits)[0]
    torch.testing.assert_close(logits.grad, expected)
