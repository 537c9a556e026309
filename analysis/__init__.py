"""bayesvae.analysis: measuring and showing a fitted pair (ELBO terms, evidence, posteriors, pictures)."""
