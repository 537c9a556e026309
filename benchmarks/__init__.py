"""bayesvae's benchmarks: each speed is a ratio to a baseline measured in the same run.

    python -m benchmarks.run            # full run (minutes), writes benchmarks/RESULTS.md
    python -m benchmarks.run --quick    # every benchmark once on tiny sizes (CI: the code keeps working)

svi_overhead          epoch of bayesvae's SVI training step / the same VAE as a hand-written PyTorch loop
evaluation_throughput importance-sampled log p(x) and ELBO surgery, images/s and ratio to a compute floor
data_pipeline         binarization + shuffling + batching as a fraction of the epoch
memory                peak resident memory of training and of evidence estimation as N and K grow
"""
