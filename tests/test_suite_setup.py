"""The suite's own set-up: what the controlling pytest process does before xdist starts its workers."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path


def test_the_controller_writes_arviz_daily_marker_before_workers_start(tmp_path):
    """``pytest_configure`` in the controller leaves today's ArviZ marker in a fresh cache, so workers
    importing ArviZ at the same time only read it (the race that stopped a CI run at collection)."""
    tests_dir = Path(__file__).parent
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = "import conftest\nclass Config: pass\nconftest.pytest_configure(Config())\n"
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tests_dir, env=env, check=True)
    marker = tmp_path / "arviz" / "daily_warning"
    assert marker.read_text().strip() == datetime.date.today().isoformat()


def test_a_worker_leaves_the_arviz_cache_alone(tmp_path):
    tests_dir = Path(__file__).parent
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = "import conftest\nclass Config: workerinput = {}\nconftest.pytest_configure(Config())\n"
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tests_dir, env=env, check=True)
    assert not (tmp_path / "arviz").exists()
