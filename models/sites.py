"""The names every model/guide pair shares: the protocol's fixed vocabulary, stated once.

A bayesvae pair is two Pyro programs called with a batch ``x`` of images in [0, 1]:

* ``model(x)`` samples the latent site :data:`LATENT` from the prior p(z) and scores the observed
  site :data:`OBSERVED` under the likelihood p(x | z) (``obs=x``);
* ``guide(x)`` samples :data:`LATENT` from the approximate posterior q(z | x).

Both sites sit inside ``pyro.plate(DATA_PLATE, len(x))`` so that each image has its own latent
and every log-density has one entry per image. These names are checked before training
(:func:`bayesvae.models.protocol.check_pair`).
"""

LATENT = "z"
"""The latent variable: ``pyro.sample(LATENT, prior)`` in the model, ``pyro.sample(LATENT, q)`` in the guide."""

OBSERVED = "x"
"""The data: ``pyro.sample(OBSERVED, likelihood, obs=x)`` in the model."""

DATA_PLATE = "data"
"""The plate over images: ``with pyro.plate(DATA_PLATE, len(x)):`` around both sites."""

PLATE_DIM = -1
"""The data plate is the rightmost batch dimension; particle plates go to its left."""

MAX_PLATE_NESTING = 1
"""Number of plates the protocol allows around the sites (the data plate only)."""
