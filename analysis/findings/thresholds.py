"""Every threshold a finding uses, in one place: value, unit and why (documented in the README).

A finding fires when a measured signal crosses one of these. They are deliberately coarse: a finding
should be true for every run it is printed for, so each threshold sits far from what healthy runs
produce (the healthy digits runs of ``tests/test_findings_runs.py`` raise no problem or warning).
``D`` below is the number of pixels of one image (C·H·W), read from the run's ``image_shape``.
"""

from __future__ import annotations

import math

# --- posterior collapse --------------------------------------------------------------------------
KL_COLLAPSED_NATS = 0.5
"""nats/image. A test KL(q(z|x) ‖ p(z)) below this at the end of training: the codes carry almost no
information about x (one used latent dimension already costs more than 1 nat on digits/MNIST)."""

MI_COLLAPSED_NATS = 0.1
"""nats/image. I_q(x; z) below this with the average KL below :data:`KL_COLLAPSED_NATS`: q(z|x) is the
same for every image (ELBO surgery's information term; 0.1 nats is far below any code that tells two
classes apart, log 2 = 0.69)."""

PARTIAL_COLLAPSE_FRACTION = 0.5
"""fraction of latent dimensions. More than this share inactive (A_u ≤ 0.01) is reported as a *note*:
VAEs switch off the dimensions they do not need, which is normal, but the latent size is then larger
than what the model uses."""

WARMUP_KL_PEAK_FACTOR = 5.0
"""ratio. KL warm-up 'vanished' the KL when the test KL peaked above this many times
:data:`KL_COLLAPSED_NATS` during warm-up and ends below :data:`KL_COLLAPSED_NATS`."""

# --- unstable training -----------------------------------------------------------------------------
KL_NATS_PER_PIXEL_MAX = math.log(256)
"""nats per pixel (5.55). A KL above D × log 256 nats/image is more information than an 8-bit image
holds: no encoding of the data can need it; the encoder has diverged."""

LOSS_OUTLIER_WARNING = 10.0
LOSS_OUTLIER_PROBLEM = 100.0
"""ratios. An epoch's training loss (−objective, nats/image) above the run's median by this many times
max(|median|, :data:`LOSS_FLOOR_NATS_PER_PIXEL` × D): an explosion or spike (one order of magnitude: a
warning; two: a problem). Healthy digits runs: first epoch ≈ 1.3 × the median."""

LOSS_FLOOR_NATS_PER_PIXEL = 1.0
"""nats per pixel. Floor of the loss scale above, so a loss near 0 (Gaussian likelihoods) is not called
an explosion for moving by a few nats: an untrained decoder's first epoch costs a few nats per pixel at
most (Bernoulli: log 2 = 0.69; Gaussian s = 0.1 on digits: 4.3 measured), never 10."""

# --- convergence and overfitting ------------------------------------------------------------------
TAIL_FRACTION = 0.2
"""fraction of the epochs (at least :data:`TAIL_MIN_EPOCHS`). 'The end of training' = the last this
share of epochs, compared with the same number of epochs before it."""

TAIL_MIN_EPOCHS = 3
"""epochs. With fewer than 2 × this many epochs convergence and overfitting are not judged."""

NOT_CONVERGED_RELATIVE = 0.02
"""fraction of |test ELBO|. The test ELBO still rising by more than 2 % of its size between the two
tail windows (and by more than :data:`NOISE_FACTOR` standard errors of the epoch-to-epoch noise):
training more would change the numbers (the healthy 100-epoch digits run still gains 0.8 %)."""

NOISE_FACTOR = 3.0
"""standard errors. A change between two windows of epochs counts only when it exceeds this many
standard errors of the window means (epoch-to-epoch differences estimate the noise)."""

OVERFIT_RELATIVE = 0.01
"""fraction of |test ELBO|. Overfitting: the test ELBO ended this much (and :data:`NOISE_FACTOR`
standard errors) below its best window while the train/test gap grew by as much."""

# --- likelihood ------------------------------------------------------------------------------------
SCALE_RATIO_MAX = 3.0
"""ratio. A fixed Gaussian pixel scale s more than 3 × (or less than 1/3 of) the measured RMS
reconstruction residual: log p(x|z) is far from its best fixed-scale value (a 3 × too wide s alone
costs D (log 3 − 4/9) ≈ 0.65 D nats/image)."""

# --- importance-sampled evidence -------------------------------------------------------------------
KHAT_GOOD = 0.5
KHAT_BAD = 0.7
"""PSIS Pareto k̂ (Vehtari et al. 2024). Below 0.5 importance sampling converges at the usual rate;
0.5–0.7 slowly (a note); above 0.7 the weights have (nearly) infinite variance: log p(x) and its
standard error cannot be trusted (a problem, and the number is not shown to three decimals)."""

KHAT_BAD_FRACTION = 0.1
"""fraction of images. log p(x) averaged over images is called unreliable (a problem, shown without
decimals) when more than 10 % of the images have k̂ above :data:`KHAT_BAD`; fewer such images are a
note naming them (their own estimates are uncertain, the mean much less so). k̂ from K draws is noisy:
a healthy digits VAE had 6 of 200 images above 0.7 at K = 200, a diverged one (--lr 1) all of them."""

# --- latent space ----------------------------------------------------------------------------------
MI_AT_BOUND_FRACTION = 0.95
"""fraction of log N. I_q(x; z) ≥ 95 % of log N: the encoder tells every one of the N images apart and
the surgery split is limited by N, not by the model."""

MARGINAL_KL_MAX_NATS = 10.0
"""nats/image. KL(q(z) ‖ p(z)) above this and above half the average KL (with I_q below its bound):
the aggregate posterior does not match the prior, so samples from p(z) do not look like the data."""

SPREAD_MIN = 0.05
"""standard deviation of the posterior means over images (rms over dimensions, in z units). Below it
(or with 0 active units) the encoder is near-constant: probe accuracies and silhouettes measure noise
in the codes, not grouping."""

PRIOR_STD_MATCH = 0.8
"""ratio. A posterior std within [0.8, 1/0.8] × the prior's std is 'at the prior's width'."""

# --- MCMC ------------------------------------------------------------------------------------------
R_HAT_MAX = 1.01
ESS_MIN = 400
"""R-hat above 1.01 or bulk/tail ESS below 400 (Vehtari et al. 2021): the chains have not converged."""

TREE_DEPTH_AT_CAP = 0.9
"""fraction of the maximum tree depth. A mean tree depth at or above 90 % of the cap: NUTS stopped its
trajectories early (the probable cause of poor mixing)."""
