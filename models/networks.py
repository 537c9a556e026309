"""Encoder and decoder networks: deterministic maps, no probability in them.

An *encoder* maps a batch of images ``(..., C, H, W)`` to features ``(..., out_features)``; a
guide puts its distribution's heads on top. A *decoder* maps latents ``(..., latent_dim)`` to an
unconstrained tensor ``(..., C, H, W)`` (logits or a pre-sigmoid mean) that a likelihood turns into
p(x | z). Leading dimensions (data, Monte Carlo particles) pass through untouched.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import torch
from torch import nn

from .errors import BadInput


# The hidden layers' nonlinearity (``--activation``). Softplus is the default: it is what every run so far
# was trained with (numbers stay comparable) and it is smooth, so the decoder's log p(x|z) has continuous
# gradients in z for NUTS on p(z|x). ReLU often fits MNIST better (about 0.5-0.9 nat of log p(x) at z = 50).
ACTIVATIONS = {"softplus": nn.Softplus, "relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh}
DEFAULT_ACTIVATION = "softplus"


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise BadInput(f"unknown --activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _mlp(sizes: Sequence[int], last_activation: bool, activation: str = DEFAULT_ACTIVATION) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if last_activation or i < len(sizes) - 2:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Images ``(..., C, H, W)`` → features ``(..., hidden[-1])`` through Softplus (``activation``) layers."""

    def __init__(self, image_shape: Sequence[int], hidden: Sequence[int], activation: str = DEFAULT_ACTIVATION):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.out_features = hidden[-1]
        self.net = _mlp([math.prod(image_shape), *hidden], last_activation=True, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(-len(self.image_shape)))


class MLPDecoder(nn.Module):
    """Latents ``(..., d)`` → unconstrained image-shaped output ``(..., C, H, W)``.

    The classic 784-400-d VAE is ``MLPDecoder(d, (1, 28, 28), [400])`` with ``MLPEncoder``
    mirroring it.
    """

    def __init__(self, latent_dim: int, image_shape: Sequence[int], hidden: Sequence[int],
                 activation: str = DEFAULT_ACTIVATION):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = _mlp([latent_dim, *reversed(hidden), math.prod(image_shape)], last_activation=False,
                        activation=activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).unflatten(-1, self.image_shape)


def _check_conv_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(C, H, W)`` when the sides are divisible by 4 (two stride-2 layers), else BadInput."""
    _, height, width = image_shape
    if height % 4 or width % 4:
        raise BadInput(
            f"--net conv needs image sides divisible by 4 (28×28, 8×8, ...); these images are "
            f"{height}×{width}: use --net mlp"
        )
    return tuple(image_shape)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (H → H/4) then a dense layer: images → ``(..., hidden)`` features."""

    def __init__(self, image_shape: Sequence[int], hidden: int = 256, channels: Sequence[int] = (32, 64),
                 activation: str = DEFAULT_ACTIVATION):
        super().__init__()
        c, h, w = _check_conv_shape(image_shape)
        act = partial(make_activation, activation)  # one fresh module per layer
        self.image_shape, self.out_features = tuple(image_shape), hidden
        self.net = nn.Sequential(
            nn.Conv2d(c, channels[0], 4, stride=2, padding=1), act(),
            nn.Conv2d(channels[0], channels[1], 4, stride=2, padding=1), act(),
            nn.Flatten(),
            nn.Linear(channels[1] * (h // 4) * (w // 4), hidden), act(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Convolutions take one batch dimension: fold the leading ones and unfold them after.
        lead = x.shape[: -len(self.image_shape)]
        return self.net(x.reshape(-1, *self.image_shape)).reshape(*lead, self.out_features)


class ConvDecoder(nn.Module):
    """A dense layer to a ``(64, H/4, W/4)`` map, then two stride-2 transposed convolutions to ``(C, H, W)``."""

    def __init__(self, latent_dim: int, image_shape: Sequence[int], hidden: int = 256,
                 channels: Sequence[int] = (32, 64), activation: str = DEFAULT_ACTIVATION):
        super().__init__()
        c, h, w = _check_conv_shape(image_shape)
        act = partial(make_activation, activation)
        self.image_shape, self.latent_dim = tuple(image_shape), latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), act(),
            nn.Linear(hidden, channels[1] * (h // 4) * (w // 4)), act(),
            nn.Unflatten(1, (channels[1], h // 4, w // 4)),
            nn.ConvTranspose2d(channels[1], channels[0], 4, stride=2, padding=1), act(),
            nn.ConvTranspose2d(channels[0], c, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        return self.net(z.reshape(-1, self.latent_dim)).reshape(*lead, *self.image_shape)


NETWORKS = ("mlp", "conv")


def make_encoder(net: str, image_shape: Sequence[int], hidden: Sequence[int],
                 activation: str = DEFAULT_ACTIVATION) -> nn.Module:
    """The encoder body for ``net`` in :data:`NETWORKS` (conv nets use ``hidden[-1]`` dense units)."""
    _check_net(net)
    if net == "mlp":
        return MLPEncoder(image_shape, hidden, activation)
    return ConvEncoder(image_shape, hidden[-1], activation=activation)


def make_decoder(net: str, latent_dim: int, image_shape: Sequence[int], hidden: Sequence[int],
                 activation: str = DEFAULT_ACTIVATION) -> nn.Module:
    """The decoder for ``net`` in :data:`NETWORKS`, mirroring :func:`make_encoder`."""
    _check_net(net)
    if net == "mlp":
        return MLPDecoder(latent_dim, image_shape, hidden, activation)
    return ConvDecoder(latent_dim, image_shape, hidden[-1], activation=activation)


def _check_net(net: str) -> None:
    if net not in NETWORKS:
        raise BadInput(f"unknown --net {net!r}; choose one of: {', '.join(NETWORKS)}")
