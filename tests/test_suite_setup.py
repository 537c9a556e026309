"""The suite's own set-up: what the controlling pytest process does before xdist starts its workers."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path


def _configure_in_a_fresh_cache(cache: Path, config_class: str) -> Path:
    """Run conftest's ``pytest_configure`` in a new process whose user cache is ``cache``; the ArviZ
    marker's path there."""
    code = f"import conftest\n{config_class}\nconftest.pytest_configure(Config())\n"
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=Path(__file__).parent,
                   env={**os.environ, "XDG_CACHE_HOME": str(cache)}, check=True)
    return cache / "arviz" / "daily_warning"


def test_the_controller_writes_arviz_daily_marker_before_workers_start(tmp_path):
    """``pytest_configure`` in the controller leaves today's ArviZ marker in a fresh cache, so workers
    importing ArviZ at the same time only read it (the race that stopped a CI run at collection)."""
    marker = _configure_in_a_fresh_cache(tmp_path, "class Config: pass")
    assert marker.read_text().strip() == datetime.date.today().isoformat()


def test_a_worker_leaves_the_arviz_cache_alone(tmp_path):
    marker = _configure_in_a_fresh_cache(tmp_path, "class Config: workerinput = {}")
    assert not marker.parent.exists()


def test_bayesvae_imports_arviz_without_its_refactor_notice(tmp_path):
    """ArviZ's daily notice starts with a newline, so a filter on "ArviZ is undergoing ..." never matched
    it (filters match from the start of the message); with warnings as errors, importing either module
    that calls ArviZ in a fresh cache fails if the filter in inference/arviz_import.py misses it again."""
    for module in ("bayesvae.analysis.arviz_io", "bayesvae.inference.psis"):
        cache = tmp_path / module
        subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", f"import {module}"],
                       env={**os.environ, "XDG_CACHE_HOME": str(cache)}, check=True)
        assert (cache / "arviz" / "daily_warning").exists()    # ArviZ did run its daily check
