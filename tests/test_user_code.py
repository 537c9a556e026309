"""Your own model and guide: one code path with the built-ins, checked before training, trusted explicitly."""

import hashlib
import json
import textwrap
from pathlib import Path

import pytest
import torch

import bayesvae
from conftest import tree_snapshot

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TEMPLATE = EXAMPLES / "vae_template.py"
quiet = dict(device="cpu", progress=False, log=lambda _: None)

# template parameter name -> built-in parameter name (same networks, same construction order)
TEMPLATE_TO_BUILTIN = {
    "decoder$$$0.weight": "model$$$decoder.net.0.weight", "decoder$$$0.bias": "model$$$decoder.net.0.bias",
    "decoder$$$2.weight": "model$$$decoder.net.2.weight", "decoder$$$2.bias": "model$$$decoder.net.2.bias",
    "encoder$$$0.weight": "guide$$$encoder.net.0.weight", "encoder$$$0.bias": "guide$$$encoder.net.0.bias",
    "loc_head$$$weight": "guide$$$loc.weight", "loc_head$$$bias": "guide$$$loc.bias",
    "scale_head$$$weight": "guide$$$scale.weight", "scale_head$$$bias": "guide$$$scale.bias",
}


def test_template_trains_to_the_builtin_parameters():
    """The built-in definition and its user-script twin go through one path: identical parameters."""
    builtin = bayesvae.fit(epochs=3, seed=5, **quiet)
    template = bayesvae.fit(model=f"{TEMPLATE}:model", guide=f"{TEMPLATE}:guide", epochs=3, seed=5, **quiet)
    a, b = builtin.pair.unconstrained_parameters(), template.pair.unconstrained_parameters()
    assert set(b) == set(TEMPLATE_TO_BUILTIN) and set(a) == set(TEMPLATE_TO_BUILTIN.values())
    for name, twin in TEMPLATE_TO_BUILTIN.items():
        assert torch.equal(b[name], a[twin]), name
    assert [r["test_elbo"] for r in builtin.history_rows] == [r["test_elbo"] for r in template.history_rows]


def test_user_guide_with_builtin_model_and_student_t_pair_train():
    mixed = bayesvae.fit(guide=f"{EXAMPLES / 'conv_guide.py'}:guide", epochs=2, **quiet)
    assert any(name.startswith("conv_encoder$$$") for name in mixed.pair.unconstrained_parameters())
    assert any(name.startswith("model$$$decoder") for name in mixed.pair.unconstrained_parameters())
    notes = []
    student = bayesvae.fit(model=f"{EXAMPLES / 'student_t_vae.py'}:model",
                           guide=f"{EXAMPLES / 'student_t_vae.py'}:guide", epochs=2,
                           **{**quiet, "log": notes.append})
    assert any("no closed form" in note for note in notes)  # analytic ELBO says it falls back to MC
    assert student.history_rows[-1]["test_kl"] > 0


def test_run_keeps_a_copy_of_the_script_and_its_hash(tmp_path):
    script = tmp_path / "my_vae.py"
    script.write_text(TEMPLATE.read_text())
    bayesvae.fit(model=f"{script}:model", guide=f"{script}:guide", out=tmp_path / "run", epochs=1, **quiet)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    copy = tmp_path / "run" / config["code"]["model"]["file"]
    assert copy.read_bytes() == script.read_bytes()
    assert config["code"]["model"]["sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    assert config["model"]["model"] == "code/my_vae.py:model" and config["model"]["guide"] == "code/my_vae.py:guide"
    script.write_text("raise SystemExit('the original changed')\n")  # editing the original changes nothing
    run = bayesvae.load_run(tmp_path / "run", trust_code=True, device="cpu")
    assert len(run.history_rows) == 1


def test_user_code_loads_only_when_trusted(tmp_path, cli):
    bayesvae.fit(guide=f"{EXAMPLES / 'conv_guide.py'}:guide", out=tmp_path / "run", epochs=1, **quiet)
    with pytest.raises(bayesvae.BadInput, match="trust"):
        bayesvae.load_run(tmp_path / "run")
    assert bayesvae.load_run(tmp_path / "run", trust_code=True, device="cpu").history_rows
    for command in (["train", "--resume"], ["show"]):
        refused = cli(*command, tmp_path / "run")
        assert refused.code == 2 and "--trust-code" in refused.err
    shown = cli("show", tmp_path / "run", "--trust-code")
    assert shown.code == 0 and "conv_encoder" in shown.out
    resumed = cli("train", "--resume", tmp_path / "run", "--epochs", "2", "--trust-code", "--device", "cpu")
    assert resumed.code == 0, resumed.err


def test_tampered_or_escaping_code_is_refused(tmp_path):
    bayesvae.fit(guide=f"{EXAMPLES / 'conv_guide.py'}:guide", out=tmp_path / "run", epochs=1, **quiet)
    copy = tmp_path / "run" / "code" / "conv_guide.py"
    copy.write_text(copy.read_text() + "\n# edited\n")
    with pytest.raises(bayesvae.BadInput, match="changed since training"):
        bayesvae.load_run(tmp_path / "run", trust_code=True)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    for bad in ("../evil.py", "/tmp/evil.py", "code/../../evil.py"):
        config["code"]["guide"]["file"] = bad
        (tmp_path / "run" / "config.json").write_text(json.dumps(config))
        with pytest.raises(bayesvae.BadInput, match="inside the run's code/ folder"):
            bayesvae.load_run(tmp_path / "run", trust_code=True)


def test_functions_from_a_file_and_from_memory(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("user_template", TEMPLATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # functions defined in a .py file are copied into the run and re-imported there
    run = bayesvae.fit(module.model, module.guide, out=tmp_path / "run", epochs=1, **quiet)
    assert (tmp_path / "run" / "code" / "vae_template.py").is_file()
    # a function without a file (a notebook cell) trains in memory, and cannot be saved
    namespace = {}
    exec(textwrap.dedent(f"exec(open({str(EXAMPLES / 'conv_guide.py')!r}).read())"), namespace)
    in_memory = bayesvae.fit(guide=namespace["guide"], epochs=1, **quiet)
    assert in_memory.path is None and in_memory.history_rows
    with pytest.raises(bayesvae.BadInput, match="outside a .py file"):
        bayesvae.fit(guide=namespace["guide"], out=tmp_path / "nope", epochs=1, **quiet)
    assert run.history_rows


# --- bad definitions: exit 2, one line naming the problem, nothing written --------------------------------

GOOD_GUIDE = """
def guide(x):
    pyro.module("enc", enc)
    with pyro.plate("data", x.shape[0]):
        pyro.sample("z", dist.Normal(enc(x.flatten(1)), 1.0).to_event(1))
"""
HEADER = """
import torch, pyro, pyro.distributions as dist
enc = torch.nn.Linear(64, 16)
"""


def script(body: str) -> str:
    return HEADER + textwrap.dedent(body)


BAD_SCRIPTS = {
    "raises at import": (script("raise RuntimeError('boom')"), "guide", "raised at import: RuntimeError: boom"),
    "syntax error": ("def guide(x:\n", "guide", "not valid Python"),
    "function missing": (script("def other(x): pass"), "guide", "defines no 'guide'"),
    "not callable": (script("guide = 3"), "guide", "not callable"),
    "latent site misnamed": (script(GOOD_GUIDE.replace('"z"', '"latent"')), "guide", "no sample site 'z'"),
    "no plate": (script("""
        def guide(x):
            pyro.module("enc", enc)
            pyro.sample("z", dist.Normal(enc(x.flatten(1)), 1.0).to_event(2))
        """), "guide", "not inside pyro.plate('data'"),
    "batch shape without to_event": (script("""
        def guide(x):
            pyro.module("enc", enc)
            with pyro.plate("data", x.shape[0], dim=-2):
                pyro.sample("z", dist.Normal(enc(x.flatten(1)), 1.0))
        """), "guide", "batch shape"),
    "latent of the wrong size": (script(GOOD_GUIDE.replace("enc(x.flatten(1))", "enc(x.flatten(1))[:, :3]")),
                                 "guide", "shape (4, 3) but the model's prior has (4, 16)"),
    "latent on the wrong support": (script(GOOD_GUIDE.replace("dist.Normal", "dist.LogNormal")), "guide",
                                    "must cover the prior's support"),
    "model without observed site": (script("""
        dec = torch.nn.Linear(16, 64)
        def model(x):
            pyro.module("dec", dec)
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", dist.Normal(torch.zeros(16), 1.0).to_event(1))
                pyro.sample("x", dist.Bernoulli(logits=dec(z).reshape(x.shape)).to_event(3))
        """), "model", "must be observed"),
    "sys.exit at import": (script("import sys\nsys.exit(0)"), "guide", "called sys.exit(0) at import (line 5)"),
    "KeyboardInterrupt at import": (script("raise KeyboardInterrupt"), "guide", "raised KeyboardInterrupt at import"),
    # works for z of shape (N, d) only: the objectives and diagnostics stack draws of z left of the batch
    "model reshaping to x.shape": (script("""
        dec = torch.nn.Linear(16, 64)
        def model(x):
            pyro.module("dec", dec)
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", dist.Normal(torch.zeros(16), 1.0).to_event(1))
                pyro.sample("x", dist.Bernoulli(logits=dec(z).reshape(x.shape)).to_event(3), obs=x)
        """), "model", "mine.py:10 (model): RuntimeError"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCRIPTS))
def test_bad_user_definitions_exit_2(case, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source, role, expected = BAD_SCRIPTS[case]
    (tmp_path / "mine.py").write_text(source)
    before = tree_snapshot(tmp_path)
    result = cli("train", f"--{role}", "mine.py:" + role, "--epochs", "1", "--device", "cpu", "--out", "run")
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.err
    assert tree_snapshot(tmp_path) == before


def test_missing_script_and_non_python_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    for ref, expected in (("nowhere.py:guide", "does not exist"), ("notes.txt:guide", "not a Python file")):
        result = cli("train", "--guide", ref, "--epochs", "1", "--device", "cpu")
        assert result.code == 2 and expected in result.err, result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.fixture(scope="module")
def user_runs(tmp_path_factory):
    """Two user-defined runs, 2 epochs each: the template pair and the Student-t pair."""
    root = tmp_path_factory.mktemp("user-runs")
    for name in ("vae_template", "student_t_vae"):
        script = EXAMPLES / f"{name}.py"
        bayesvae.fit(model=f"{script}:model", guide=f"{script}:guide", out=root / name, epochs=2, **quiet)
    return root


def test_diagnose_a_user_defined_run_obeys_the_same_checks(user_runs, cli):
    refused = cli("diagnose", user_runs / "vae_template", "--no-mcmc")
    assert refused.code == 2 and "--trust-code" in refused.err
    torch.manual_seed(0)
    result = bayesvae.diagnose(user_runs / "vae_template", k=200, trust_code=True, device="cpu", progress=False,
                               mcmc=False, log=lambda _: None)
    evidence, latent = result["evidence"], result["latent"]
    # ELBO ≤ IWAE_K (the importance-sampled log p(x)), beyond Monte Carlo error
    assert evidence["elbo"] <= evidence["log_px"] + 3 * evidence["gap_se"], evidence
    # per-dimension KLs add up to the total KL, which is the anatomy's KL term
    assert sum(row["kl"] for row in latent["per_dimension"]) == pytest.approx(latent["kl_total"], rel=1e-6)
    assert latent["kl_total"] == pytest.approx(result["anatomy"]["kl"]["value"], rel=1e-6)
    assert (user_runs / "vae_template" / "diagnostics" / "anatomy.json").is_file()
    # a Student-t guide has no closed-form KL: diagnose says so instead of inventing per-dimension numbers
    student = bayesvae.diagnose(user_runs / "student_t_vae", k=200, trust_code=True, device="cpu", progress=False,
                                mcmc=False, log=lambda _: None)
    assert student["anatomy"]["kl"]["method"] != "analytic"
    assert student["evidence"]["elbo"] <= student["evidence"]["log_px"] + 3 * student["evidence"]["gap_se"]


def test_compare_user_defined_runs(user_runs, tmp_path):
    with pytest.raises(bayesvae.BadInput, match="trust"):
        bayesvae.compare([user_runs / "vae_template"], out=tmp_path / "cmp", device="cpu")
    result = bayesvae.compare([user_runs / "vae_template", user_runs / "student_t_vae"], out=tmp_path / "cmp",
                              k=100, trust_code=True, device="cpu", progress=False, log=lambda _: None)
    rows = {row["name"]: row for row in result["runs"]}
    for row in rows.values():
        # the rate-distortion decomposition of the same ELBO estimate, and ELBO ≤ log p(x)
        assert row["elbo"] == pytest.approx(-(row["rate"] + row["distortion"]), abs=1e-6)
        assert row["elbo"] <= row["log_px"] + 0.05
    assert (tmp_path / "cmp" / "rate_distortion.png").is_file()


def test_user_code_failing_during_training_is_one_line_naming_its_file_and_line(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = GOOD_GUIDE.replace("def guide(x):\n", "calls = [0]\ndef guide(x):\n    calls[0] += 1\n"
                              "    if calls[0] > 30:\n        raise ValueError('guide broke')\n")
    (tmp_path / "mine.py").write_text(HEADER + body)
    line = (HEADER + body).splitlines().index("        raise ValueError('guide broke')") + 1
    result = cli("train", "--guide", "mine.py:guide", "--epochs", "5", "--device", "cpu", "--out", "run")
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and f"mine.py:{line} (guide): ValueError: guide broke" in lines[0], result.err


@pytest.mark.parametrize("command", ["diagnose", "compare"])
def test_user_code_failing_in_diagnose_or_compare_is_one_line_naming_its_file_and_line(command, cli, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = GOOD_GUIDE.replace("def guide(x):\n", "import os\ndef guide(x):\n    if os.environ.get('BREAK_GUIDE'):\n"
                              "        raise ValueError('guide broke')\n")
    (tmp_path / "mine.py").write_text(HEADER + body)
    line = (HEADER + body).splitlines().index("        raise ValueError('guide broke')") + 1
    bayesvae.fit(guide="mine.py:guide", out=tmp_path / "run", epochs=1, **quiet)
    monkeypatch.setenv("BREAK_GUIDE", "1")
    args = ["--no-mcmc"] if command == "diagnose" else ["--out", tmp_path / "cmp"]
    result = cli(command, tmp_path / "run", "--trust-code", "--k", "5", "--max-images", "10", "--device", "cpu", *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and f"code/mine.py:{line} (guide): ValueError: guide broke" in lines[0], result.err
