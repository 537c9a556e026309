"""``bayesvae show``: definitions as code, and ``--against`` as the few lines that change between two of them."""

import re
import sys
from pathlib import Path

import pytest

import bayesvae
from bayesvae.commands.show import diff_lines, source_of
from bayesvae.models.build import ModelSpec, build_pair

quiet = dict(device="cpu", progress=False, log=lambda _: None)


def changed(out: str, sign: str) -> list[str]:
    return [line[1:].strip() for line in out.splitlines() if line.startswith(sign) and not line.startswith(sign * 3)]


def test_vae_to_autoencoder_is_a_few_guide_lines(cli):
    result = cli("show", "--against", "guide=delta")
    assert result.code == 0, result.err
    assert "model  p(z) p(x|z): identical" in result.out
    removed, added = changed(result.out, "-"), changed(result.out, "+")
    assert any("dist.Normal(self.loc(h)" in line for line in removed)
    assert any("dist.Delta(self.code(h))" in line for line in added)
    assert 4 <= len(removed) + len(added) <= 20          # a few highlighted lines, not two whole listings
    assert "\033[" not in result.out                      # no colour when stdout is not a terminal


def test_prior_change_touches_only_the_model(cli):
    result = cli("show", "--guide", "normal", "--against", "prior=vamp")
    assert result.code == 0, result.err
    assert "guide  q(z|x): identical" in result.out
    assert any("class VampPrior" in line for line in changed(result.out, "+"))
    assert any("class StandardNormalPrior" in line for line in changed(result.out, "-"))


def test_colour_only_on_a_terminal(cli, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    result = cli("show", "--against", "guide=iaf")
    assert "\033[32m+" in result.out and "\033[31m-" in result.out
    changes = re.search(r"guide  q\(z\|x\): (\d+) lines change", result.out)
    assert changes and int(changes.group(1)) > 3, result.out[:300]


def test_diff_lines_is_empty_for_identical_definitions():
    vae = build_pair(ModelSpec(), (1, 8, 8))
    text = source_of(vae.definitions["guide"])
    assert diff_lines(text, text, ("a", "b")) == []
    assert "def forward" in text and "inherited from AmortizedGuide" in text  # the whole guide program is shown


def test_two_runs_are_compared(tmp_path, cli):
    for name, guide in (("vae", "normal"), ("ae", "delta")):
        bayesvae.fit(guide=guide, out=tmp_path / name, epochs=1, latent_dim=2, hidden=(8,), **quiet)
    result = cli("show", tmp_path / "vae", "--against", tmp_path / "ae")
    assert result.code == 0, result.err
    assert "model  p(z) p(x|z): identical" in result.out and "class DeltaGuide" in result.out


def test_side_by_side_without_against(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")   # the columns share the terminal's width; narrower ones wrap the lines
    result = cli("show", "--guide", "lowrank")
    assert result.code == 0 and "class LowRankNormalGuide" in result.out and "class Model" in result.out


@pytest.mark.parametrize("against,message", [("delta", "expects key=value"), ("colour=red", "not key=value"),
                                             ("guide=", "not key=value"), ("latent-dim=two", "whole number"),
                                             ("guide=gaussian", "unknown --guide 'gaussian'")])
def test_bad_against_exits_2_with_one_line(against, message, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("show", "--against", against)
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err, result.err
    assert list(tmp_path.iterdir()) == []


def test_render_without_graphviz_says_what_to_install(cli, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)  # no `dot` program on PATH
    result = cli("show", "--render", tmp_path / "g")
    assert result.code == 2 and ("graphviz" in result.err) and len(result.err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_render_draws_model_and_guide_where_graphviz_is_installed(cli, tmp_path):
    import shutil

    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot program is not installed")
    result = cli("show", "--render", tmp_path / "g")
    assert result.code == 0, result.err
    for role in ("model", "guide"):
        assert (tmp_path / f"g-{role}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


PLANTED = "import pathlib\npathlib.Path(__file__).with_name('EXECUTED').write_text('planted')\n"


def test_against_scripts_resolve_in_the_current_folder_never_in_the_run(cli, tmp_path, monkeypatch):
    """A script named on the command line is the one in the current folder: a vae.py planted in RUN is never run."""
    import bayesvae

    run = tmp_path / "run"
    bayesvae.fit(out=run, epochs=1, latent_dim=2, hidden=(16,), device="cpu", progress=False, log=lambda _: None)
    (run / "vae.py").write_text(PLANTED + "def guide(x):\n    pass\n")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = cli("show", run, "--against", "guide=vae.py:guide")
    assert result.code == 2 and f"script {here / 'vae.py'} does not exist" in result.err, result
    assert not (run / "EXECUTED").exists()
    template = (Path(__file__).resolve().parents[1] / "examples" / "vae_template.py").read_text()
    (here / "vae.py").write_text(template)
    result = cli("show", run, "--against", "guide=vae.py:guide")
    assert result.code == 0, result
    assert "loc_head" in result.out and not (run / "EXECUTED").exists()
