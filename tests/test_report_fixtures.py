"""Session fixtures for the report tests: a small sweep (VAE β = 1, VAE β = 4, autoencoder) with diagnostics
(one with MCMC) and a comparison, and a run of the user-script template. Seconds on digits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(latent_dim=2, hidden=(32,), epochs=3, device="cpu", progress=False, log=lambda _: None)
QUIET = dict(log=lambda _: None, progress=False)
_BUILT: dict[str, Path] = {}   # both report test modules import these fixtures: build each folder once per session


def _once(name: str, build) -> Path:
    if name not in _BUILT:
        _BUILT[name] = build()
    return _BUILT[name]


@pytest.fixture(scope="session")
def report_sweep(tmp_path_factory) -> Path:
    """sweep/{vae, vae-beta4, ae} trained, diagnosed (vae with a short MCMC) and compared into sweep/comparison."""
    return _once("sweep", lambda: _sweep(tmp_path_factory))


def _sweep(tmp_path_factory) -> Path:
    import bayesvae

    sweep = tmp_path_factory.mktemp("report") / "sweep"
    vae = bayesvae.fit(out=sweep / "vae", **SMALL)
    bayesvae.fit(out=sweep / "vae-beta4", beta=4.0, **SMALL)
    ae = bayesvae.fit(guide="delta", out=sweep / "ae", **SMALL)
    bayesvae.diagnose(vae, k=50, max_images=120, mcmc=True, n_images=4, chains=2, warmup=60, draws=120,
                      gap_steps=20, **QUIET)
    bayesvae.diagnose(ae, k=50, max_images=120, mcmc=False, **QUIET)
    bayesvae.compare(sweep, sweep / "comparison", k=20, max_images=120, samples=2, device="cpu", **QUIET)
    return sweep


@pytest.fixture(scope="session")
def script_run(tmp_path_factory) -> Path:
    """A run of examples/vae_template.py (user model and guide), diagnosed (part 1)."""
    return _once("script", lambda: _script(tmp_path_factory))


def _script(tmp_path_factory) -> Path:
    import bayesvae

    folder = tmp_path_factory.mktemp("report-script")
    script = folder / "vae_template.py"
    shutil.copy(ROOT / "examples" / "vae_template.py", script)
    out = folder / "template-run"
    bayesvae.fit(f"{script}:model", f"{script}:guide", out=out, epochs=2, device="cpu", progress=False,
                 log=lambda _: None)
    bayesvae.diagnose(out, k=20, max_images=60, mcmc=False, trust_code=True, device="cpu", **QUIET)
    return out
