"""The lines of a run's own code that define each Bayes term, found without running the user's code.

Built-in definitions are read with :mod:`inspect` from the classes the run's configuration builds
(models/model.py, guides.py, priors.py, likelihoods.py); user scripts are read from the run's copy in
RUN/code/ with :mod:`ast` (importing a script would execute it). In the model, the ``pyro.sample``
line with ``obs=`` is the likelihood p(x | z) and the other one the prior p(z); in the guide the
``pyro.sample`` line is q(z | x).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .inputs import RunResults


@dataclass
class Snippet:
    """Numbered source lines of one file: ``where`` (e.g. models/model.py) and (line number, text) pairs."""

    where: str
    lines: list[tuple[int, str]]

    def listing(self) -> list[str]:
        width = max(len(str(n)) for n, _ in self.lines)
        body = textwrap.dedent("\n".join(text for _, text in self.lines)).splitlines()
        return [f"# {self.where}"] + [f"{n:>{width}}  {text}" for (n, _), text in zip(self.lines, body)]


def _short(path: str | Path) -> str:
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def _object_lines(obj) -> Snippet:
    lines, start = inspect.getsourcelines(obj)
    return Snippet(_short(inspect.getsourcefile(obj)), [(start + i, line.rstrip("\n")) for i, line in enumerate(lines)])


def _sample_lines(snippet: Snippet, observed: bool | None) -> Snippet:
    """The ``pyro.sample`` lines of a listing: observed (``obs=``) ones, latent ones, or (None) all."""
    keep = [(n, t) for n, t in snippet.lines if "pyro.sample(" in t and (observed is None or ("obs=" in t) == observed)]
    return Snippet(snippet.where, keep or snippet.lines)


def _script_function(run: RunResults, role: str) -> Snippet | None:
    """The user's function for ``role`` in the run's copy of the script (by :mod:`ast`, nothing imported)."""
    ref = run.config["model"][role]
    entry = run.config.get("code", {}).get(role)
    if not entry or ":" not in ref:
        return None
    path = run.path / entry["file"]
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").splitlines()
    name = ref.rpartition(":")[2].split(".")[-1]
    try:
        tree = ast.parse("\n".join(text))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return Snippet(_short(path), [(n, text[n - 1]) for n in range(node.lineno, node.end_lineno + 1)])
    return Snippet(_short(path), list(enumerate(text, 1)))


def _builtin_pair(run: RunResults):
    """The built-in definitions of the run (user roles replaced by the defaults, never imported)."""
    from bayesvae.models.build import ModelSpec, build_pair

    spec = dict(run.config["model"])
    spec["hidden"] = tuple(spec.get("hidden", ()))
    for role, default in (("model", "builtin"), ("guide", "normal")):
        if role in run.config.get("code", {}) or ":" in str(spec[role]):
            spec[role] = default
    return build_pair(ModelSpec.from_dict(spec), tuple(run.config["image_shape"]))


def term_lines(run: RunResults) -> dict[str, list[Snippet]]:
    """For 'prior', 'likelihood' and 'posterior' (q(z|x)): the lines of this run's code that define it."""
    model, guide = _script_function(run, "model"), _script_function(run, "guide")
    pair = None if model and guide else _builtin_pair(run)
    terms: dict[str, list[Snippet]] = {}
    if model is None:
        built = pair.definitions["model"]
        forward = _object_lines(type(built).forward)
        # the discrete models (mixture, M2) write their priors in forward itself: no prior module to list
        terms["prior"] = [_sample_lines(forward, False)] + \
            ([_object_lines(type(built.prior).forward)] if hasattr(built, "prior") else [])
        terms["likelihood"] = [_sample_lines(forward, True), _object_lines(type(built.likelihood).forward)]
    else:
        terms["prior"], terms["likelihood"] = [_sample_lines(model, False)], [_sample_lines(model, True)]
    if guide is None:
        built = pair.definitions["guide"]
        terms["posterior"] = [_sample_lines(_object_lines(type(built).forward), None)] + \
            ([_object_lines(type(built).posterior)] if hasattr(type(built), "posterior") else [])
    else:
        terms["posterior"] = [_sample_lines(guide, None)]
    return terms


def guide_source(run: RunResults) -> tuple[str, str]:
    """(label, source) of the run's guide: the built-in class as ``bayesvae show`` lists it, or the user's function."""
    user = _script_function(run, "guide")
    if user is not None:
        return user.where, "\n".join(text for _, text in user.lines)
    from bayesvae.commands.show import source_of

    return f"guide {run.guide}", source_of(_builtin_pair(run).definitions["guide"])
