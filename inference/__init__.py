"""bayesvae.inference: fitting a pair (SVI with Pyro's ELBOs, β weighting, checkpoints)."""
