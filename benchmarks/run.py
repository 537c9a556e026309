"""Run every benchmark, print the tables, write them with the machine's description to RESULTS.md.

    python -m benchmarks.run                      # full sizes (tens of minutes on 2 cores)
    python -m benchmarks.run --quick              # every benchmark once on tiny sizes; no file unless --out
    python -m benchmarks.run --only svi --threads 1

Run from the repository root on a quiet machine: other processes slow both sides of a ratio, but
not always alike. The CPU-time ratios beside the wall-time ones show how much the load mattered.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import (data_pipeline, evaluation_throughput, evidence_error, findings_overhead, memory, scale_out,
               streaming_loader, svi_overhead)
from .common import ROOT, load_average, machine, mnist_images

BENCHMARKS = ("svi", "evaluation", "coverage", "data", "stream", "memory", "findings", "scaleout")
SVI_TARGET, IWAE_TARGET = 1.05, 1.10
IWAE_TEXT = ("IWAE (`--elbo iwae`, K vectorized particles; compiled: `bayesvae.inference.compiled.JitIWAE`) over a "
             "hand-written IWAE loop (`HandWrittenVAE._iwae_loss`), MLP, batch 128, with Pyro's interpreted "
             "`RenyiELBO(alpha=0)` for comparison:")
DATA_TARGET = 0.05


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs."""

    svi_images: int = 10_000
    svi_conv_images: int = 2_560
    svi_batches: tuple[int, ...] = (32, 128, 512)
    svi_nets: tuple[str, ...] = ("mlp", "conv")
    svi_objectives: tuple[str, ...] = ("mc", "analytic")
    iwae_images: tuple[tuple[int, int], ...] = ((5, 10_000), (50, 2_560))   # (K, images)
    repetitions: int = 9   # alternating epochs per SVI setting: one epoch varies by ±10 % on a shared 2-core VM
    evidence_images: int = 2_000
    coverage_seeds: int = 100
    evidence_k: int = 1_000
    surgery_images: int = 10_000
    evaluation_repetitions: int = 3
    data_images: int = 10_000
    data_epochs: int = 5
    stream_images: int = 3_000
    stream_epochs: int = 3
    memory_training: tuple[int, ...] = (1_000, 10_000)
    memory_evidence: tuple[tuple[int, int], ...] = ((1_000, 100), (1_000, 1_000), (10_000, 100), (10_000, 1_000))
    memory_allocators: tuple[str, ...] = tuple(memory.ALLOCATORS)
    scale_images: int = 3_000        # conv VAE, 1 vs 2 processes
    scale_epochs: int = 4
    scale_repetitions: int = 2


FULL = Sizes()
QUICK = Sizes(svi_images=256, svi_conv_images=64, svi_batches=(128,), iwae_images=((5, 256), (50, 128)), repetitions=1, evidence_images=20, coverage_seeds=3,
              evidence_k=20, surgery_images=200, evaluation_repetitions=1, data_images=256, data_epochs=1,
              stream_images=192, stream_epochs=1,
              memory_training=(256,), memory_evidence=((20, 20),), memory_allocators=("as bayesvae runs",),
              scale_images=300, scale_epochs=2, scale_repetitions=1)


def trained_pair(x_grey: torch.Tensor, epochs: int = 1):
    """The reference MLP pair after ``epochs`` of training on ``x_grey`` (evaluation needs no more)."""
    from bayesvae.inference.batches import TrainingImages, shuffled_batches
    from bayesvae.inference.optimizer import CheckedAdam
    from bayesvae.inference.options import TrainOptions
    from bayesvae.inference.step import TrainingStep

    pair = svi_overhead.bayesvae_pair("mlp", tuple(x_grey.shape[1:]))
    step = TrainingStep(pair, TrainOptions(batch_size=128), CheckedAdam(svi_overhead.LR))
    rng = torch.Generator().manual_seed(0)
    images = TrainingImages(x_grey, "dynamic", seed=0)
    with step.running():
        for _ in range(epochs):
            epoch_images = images.epoch(rng)
            for index in shuffled_batches(x_grey.shape[0], 128, rng):
                step(epoch_images[index])
    return pair


def run(sizes: Sizes, threads: int, only: tuple[str, ...], log=print) -> dict:
    """Every selected benchmark; returns the markdown sections and the notes."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    facts = machine(threads)
    x, data_note = mnist_images(max(sizes.svi_images, sizes.surgery_images, sizes.data_images, sizes.stream_images))
    log(f"data: {data_note}")
    sections: dict[str, list[str]] = {}
    if "svi" in only:
        log("1. SVI overhead (bayesvae step / hand-written loop) ...")
        rows = []
        for net in sizes.svi_nets:
            n = sizes.svi_images if net == "mlp" else sizes.svi_conv_images
            rows += svi_overhead.run(x[:n], [net], sizes.svi_batches, sizes.svi_objectives, sizes.repetitions, log)
        iwae = svi_overhead.run_iwae(x, dict(sizes.iwae_images), 128, sizes.repetitions, log)
        sections["svi"] = (svi_overhead.markdown(rows) + [""] + _svi_verdict(rows) + ["", IWAE_TEXT, ""]
                           + svi_overhead.markdown_iwae(iwae) + [""] + _iwae_verdict(iwae))
    if "evaluation" in only:
        log("2. evaluation throughput ...")
        pair = trained_pair(x[:sizes.svi_images])
        binary = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
        rows = [evaluation_throughput.evidence(pair, binary[:sizes.evidence_images], sizes.evidence_k,
                                               sizes.evaluation_repetitions),
                evaluation_throughput.aggregate_posterior(pair, binary[:sizes.surgery_images],
                                                          sizes.evaluation_repetitions)]
        for row in rows:
            log(f"  {row.quantity}: {row.images_per_second:,.1f} images/s, ratio to floor {row.ratio}")
        sections["evaluation"] = evaluation_throughput.markdown(rows)
    if "coverage" in only:
        log("evidence error bar coverage ...")
        rows = evidence_error.measure(sizes.coverage_seeds)
        sections["coverage"] = evidence_error.markdown(rows, sizes.coverage_seeds)
    if "data" in only:
        log("3. data pipeline ...")
        row = data_pipeline.measure(x[:sizes.data_images], 128, sizes.data_epochs)
        log(f"  data handling {100 * row.fraction:.2f} % of the epoch")
        verdict = "met" if row.fraction < DATA_TARGET else "NOT met"
        sections["data"] = data_pipeline.markdown([row]) + ["", f"Target < 5 % of the epoch: **{verdict}**."]
    if "stream" in only:
        log("3b. streaming loader (conv VAE, 2 workers) ...")
        row = streaming_loader.measure(x[:sizes.stream_images], 128, sizes.stream_epochs, workers=2)
        log(f"  waiting for streamed batches {100 * row.fraction:.2f} % of the epoch")
        verdict = "met" if row.fraction < streaming_loader.TARGET else "NOT met"
        sections["stream"] = streaming_loader.markdown([row]) + ["", f"Target < 10 % of the epoch: **{verdict}**."]
    if "memory" in only:
        log("4. memory (one child process per line) ...")
        jobs = [("training", n, 0) for n in sizes.memory_training]
        jobs += [("evidence", n, k) for n, k in sizes.memory_evidence]
        rows = []
        for allocator in sizes.memory_allocators:
            for job, n, k in jobs:
                rows.append(memory.measure(job, n, k, threads, allocator))
                log(f"  {job} N={n} K={k} ({allocator}): peak {rows[-1].peak_mib:.0f} MiB, "
                    f"growth {rows[-1].growth_mib:.0f} MiB")
        sections["memory"] = memory.markdown(rows)
    if "findings" in only:
        log("5. findings overhead in diagnose ...")
        binary = torch.bernoulli(x[:sizes.evidence_images], generator=torch.Generator().manual_seed(0))
        row = findings_overhead.run(trained_pair(x[:sizes.svi_images]), binary, sizes.evidence_k,
                                    sizes.evaluation_repetitions, log)
        sections["findings"] = findings_overhead.markdown(row)
    if "scaleout" in only:
        log("6. data-parallel training, 1 vs 2 CPU processes (conv VAE) ...")
        rows = scale_out.measure(x[:sizes.scale_images], sizes.scale_epochs, sizes.scale_repetitions, log=log)
        sections["scaleout"] = scale_out.markdown(rows)
    facts["load average (1, 5, 15 min) at end"] = load_average()
    facts["benchmark minutes"] = f"{(time.perf_counter() - started) / 60:.1f}"
    return {"machine": facts, "data": data_note, "sections": sections}


def _svi_verdict(rows) -> list[str]:
    worst = max(rows, key=lambda r: r.wall["bayesvae"].median)
    over = [r for r in rows if r.wall["bayesvae"].median > SVI_TARGET]
    ok = "met" if not over else f"NOT met at {len(over)} of {len(rows)} settings"
    return [f"- Target ≤ {SVI_TARGET} at every objective, net and batch size: worst median "
            f"**{worst.wall['bayesvae'].median:.3f}** (CPU time {worst.cpu['bayesvae'].median:.3f}; {worst.objective}, "
            f"{worst.net}, batch {worst.batch_size}): **{ok}**."]


def _iwae_verdict(rows) -> list[str]:
    return [f"- Target ≤ {IWAE_TARGET} at K = {r.particles}: median **{r.wall['bayesvae'].median:.3f}** "
            f"(CPU time {r.cpu['bayesvae'].median:.3f}): **{'met' if r.wall['bayesvae'].median <= IWAE_TARGET else 'NOT met'}**."
            for r in rows]


TITLES = {
    "svi": ("1. SVI overhead: bayesvae's training step / a hand-written PyTorch loop",
            "Epoch time (wall) of `TrainingStep` — an SVI step with the compiled ELBO and `CheckedAdam` — over the same "
            "VAE as a plain PyTorch loop (`benchmarks/handwritten_vae.py`): same networks, objective, batches, "
            "learning rate and threads, data already in memory. Epochs alternate; median ratio over the "
            "repetitions, [smallest–largest]. Below 1.0 bayesvae is faster."),
    "evaluation": ("2. Evaluation throughput",
                   "Images per second and the ratio to a compute floor timed alternately in the same run "
                   "(see `benchmarks/evaluation_throughput.py` for what each floor contains)."),
    "coverage": ("2b. Evidence error bars: coverage",
                 "Not a speed. On the linear-Gaussian model, where log p(x) is exact, how often log p̂ ± 2 se "
                 "holds the truth (see `benchmarks/evidence_error.py`). The error bar bayesvae reports is the "
                 "block jackknife over 20 blocks of draws. Where the weights are heavy-tailed the misses have the "
                 "truth above the interval (last column: the largest weights were not drawn), which PSIS k̂ > 0.7 "
                 "flags per image."),
    "data": ("3. Data pipeline", "Binarization, shuffling and batching as a share of the epoch (MLP, analytic "
                                 "ELBO), timed inside the same loop as the steps."),
    "stream": ("3b. Streaming loader", "The share of a conv-VAE epoch spent waiting for batches streamed from a "
                                       "folder of PNG files by a DataLoader with 2 workers (decoding and keyed "
                                       "binarization in the workers), timed inside the same loop as the steps "
                                       "(`benchmarks/streaming_loader.py`)."),
    "memory": ("4. Memory", "Peak resident memory of a fresh process per line (`VmHWM`); *peak − set-up* is "
                            "what the job added to the loaded images and model. *as bayesvae runs*: no `MALLOC_*` "
                            "setting (the evidence tunes glibc to keep freed blocks, training does not); the "
                            "heap's peak then depends on its layout, from run to run. *large blocks returned* runs "
                            "with `MALLOC_MMAP_THRESHOLD_=1048576`: glibc then gives every freed block of 1 MiB "
                            "or more back at once, so the peak is what the code holds, not what the allocator "
                            "kept (see `benchmarks/memory.py`)."),
    "scaleout": ("6. Data-parallel training: 1 vs 2 CPU processes",
                 "Training images per second of `bayesvae train --net conv` with `--devices 1` and `--devices 2` "
                 "(Lightning Fabric, gloo), one torch thread per process, the same global batch (128) and seed; "
                 "epochs after the first, start-up not counted (`benchmarks/scale_out.py`). Below 2× is expected "
                 "on 2 cores: each step ends with an all-reduce of every gradient."),
    "findings": ("5. Findings overhead in diagnose",
                 "Time of the findings layer (diagnose_findings, render, JSON) over diagnose part 1 on the same "
                 "results, alternating rounds (`benchmarks/findings_overhead.py`)."),
}


def _gpu() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (not used by these benchmarks: CPU ratios only)"
    return "none available to this run: CPU ratios only, no GPU ratios recorded"


def markdown(results: dict, command: str) -> str:
    lines = ["# bayesvae benchmarks", "",
             f"Written by `{command}` on {datetime.date.today().isoformat()}. Every speed is a ratio to a "
             "baseline measured in the same run, alternating repetitions.", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in results["machine"].items()]
    lines += [f"| GPU | {_gpu()} |"]
    lines += ["", f"Data: {results['data']}.", ""]
    for key, body in results["sections"].items():
        title, text = TITLES[key]
        lines += [f"## {title}", "", text, "", *body, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark once on tiny sizes (no speed claims)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for both sides of every ratio (default: torch's, %(default)s)")
    parser.add_argument("--repetitions", type=int, help="alternating repetitions per SVI setting (default 9)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/RESULTS.md; none with --quick)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.repetitions:
        sizes = Sizes(**{**sizes.__dict__, "repetitions": args.repetitions})
    results = run(sizes, args.threads, tuple(args.only))
    command = "python -m benchmarks.run" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    text = markdown(results, command)
    print()
    print(text)
    out = args.out or (None if args.quick else ROOT / "benchmarks" / "RESULTS.md")
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
