"""``bayesvae show``: the model and the guide as code, side by side, as graphs, or as a diff of two definitions.

The left column is the model p(z) p(x | z) (its class with the prior and likelihood it uses); the right
column is the guide q(z | x). ``--against`` prints only what changes between two definitions, e.g.
``bayesvae show --against guide=delta`` (VAE → autoencoder) or ``bayesvae show RUN_A --against RUN_B``.
``--render`` draws both with ``pyro.render_model`` (needs the graphviz package and its ``dot`` program).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import itertools
import shutil
import sys
import textwrap
from pathlib import Path

import torch

from bayesvae.models.errors import BadInput
from bayesvae.options import add_flags, given

ROLES = (("model", "model  p(z) p(x|z)"), ("guide", "guide  q(z|x)"))
SHOWN_OPTIONS = ("model", "guide", "prior", "likelihood", "net", "latent_dim", "activation")  # ModelSpec's flags
SPEC_KEYS = {"model": "model", "guide": "guide", "prior": "prior", "likelihood": "likelihood", "net": "net",
             "latent-dim": "latent_dim", "latent_dim": "latent_dim"}


def _class_listing(cls: type) -> str:
    """A class's source, then (indented as its methods) what it inherits from bayesvae classes, e.g. the
    shared guide ``forward``: the listing reads as the whole class."""
    parts = [textwrap.dedent(inspect.getsource(cls)).rstrip("\n")]
    for base in cls.__mro__[1:]:
        if not base.__module__.startswith("bayesvae."):
            continue
        for name, member in vars(base).items():
            inherited = inspect.isfunction(member) and name != "__init__" and getattr(cls, name) is member
            if inherited and "NotImplementedError" not in inspect.getsource(member):
                parts.append(f"    # {name}, inherited from {base.__name__}:\n" + inspect.getsource(member).rstrip("\n"))
    return "\n\n".join(parts)


def source_of(definition: object) -> str:
    """The code that defines a model or guide: a function's source, or a module's class (with what it
    inherits) and the classes of the prior and likelihood it calls."""
    if isinstance(definition, torch.nn.Module):
        parts = [_class_listing(type(definition))]
        for role in ("prior", "likelihood"):
            part = getattr(definition, role, None)
            if isinstance(part, torch.nn.Module):
                parts.append(f"# {role}:\n" + _class_listing(type(part)))
        return "\n\n".join(parts)
    try:
        return textwrap.dedent(inspect.getsource(definition))
    except (OSError, TypeError):
        return f"<source of {definition!r} not available>"


def side_by_side(left: str, right: str, titles: tuple[str, str], width: int | None = None) -> str:
    """Two code listings in columns (lines longer than a column wrap)."""
    width = width or shutil.get_terminal_size((160, 40)).columns
    column = max(30, (width - 3) // 2)

    def lines(text: str) -> list[str]:
        out: list[str] = []
        for line in text.splitlines():
            out.extend(textwrap.wrap(line, column, subsequent_indent="    ", drop_whitespace=False) or [""])
        return out

    rows = [f"{titles[0]:<{column}} | {titles[1]}", f"{'-' * column}-+-{'-' * column}"]
    for a, b in itertools.zip_longest(lines(left), lines(right), fillvalue=""):
        rows.append(f"{a:<{column}} | {b}".rstrip())
    return "\n".join(rows)


_COLOURS = {"+": "\033[32m", "-": "\033[31m", "@": "\033[36m"}


def diff_lines(left: str, right: str, names: tuple[str, str], colour: bool = False) -> list[str]:
    """Unified diff of two listings (``-`` lines only in the first, ``+`` only in the second); ANSI colour
    on request (green/red/cyan). Empty when the listings are identical."""
    lines = list(difflib.unified_diff(left.splitlines(), right.splitlines(), fromfile=names[0], tofile=names[1],
                                      lineterm="", n=2))
    if not colour:
        return lines
    return [f"\033[1m{line}\033[0m" if line.startswith(("---", "+++"))
            else f"{_COLOURS[line[0]]}{line}\033[0m" if line[:1] in _COLOURS else line for line in lines]


def parse_against(text: str) -> dict[str, str] | Path:
    """``--against``: a run folder, or ``key=value[,key=value]`` overrides (keys: model, guide, prior,
    likelihood, net, latent-dim)."""
    if "=" not in text:
        if Path(text).is_dir():
            return Path(text)
        raise BadInput(f"--against expects key=value pairs (e.g. guide=delta or prior=vamp,guide=iaf) or a run "
                       f"folder; got {text!r}")
    overrides = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key.strip() not in SPEC_KEYS or not value.strip():
            raise BadInput(f"--against: {item!r} is not key=value with key one of: model, guide, prior, likelihood, "
                           f"net, latent-dim")
        overrides[SPEC_KEYS[key.strip()]] = value.strip()
    if "latent_dim" in overrides:
        try:
            overrides["latent_dim"] = int(overrides["latent_dim"])
        except ValueError:
            raise BadInput(f"--against: latent-dim must be a whole number, got {overrides['latent_dim']!r}") from None
    return overrides


def scripts_from_here(overrides: dict) -> dict:
    """Scripts named on the command line (``guide=vae.py:guide``) resolve against the current folder,
    never inside RUN: made absolute here, so building beside a run's own (hash-checked, --trust-code)
    scripts cannot import a file planted in the run folder."""
    from bayesvae.models.user_code import is_code_ref, split_code_ref

    return {key: f"{split_code_ref(value)[0].resolve()}:{split_code_ref(value)[1]}"
            if key in ("model", "guide") and is_code_ref(value) else value for key, value in overrides.items()}


def _label(spec, other) -> str:
    """The settings where ``spec`` differs from ``other`` (``guide=delta``), or ``same definition``."""
    a, b = spec.to_dict(), other.to_dict()
    return ", ".join(f"{k}={a[k]}" for k in a if a[k] != b.get(k)) or "same definition"


def render(pair, image_shape, out: Path) -> list[Path]:
    """Draw model and guide with ``pyro.render_model`` into ``out``-model.png / ``out``-guide.png."""
    import pyro

    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise BadInput("--render needs the graphviz package: pip install 'bayesvae[render]' "
                       "(and the graphviz 'dot' program, e.g. apt install graphviz)") from None
    if shutil.which("dot") is None:
        raise BadInput("--render needs graphviz's 'dot' program on PATH (e.g. apt install graphviz)")
    x = torch.zeros(2, *image_shape)
    written = []
    with pair.active():
        for role, fn in (("model", pair.model), ("guide", pair.guide)):
            path = out.with_name(f"{out.stem}-{role}.png")
            graph = pyro.render_model(fn, model_args=(x,), render_distributions=True)
            graph.render(outfile=str(path), cleanup=True)
            written.append(path)
    return written


def _definition(args: argparse.Namespace):
    """(spec, pair, image shape, base folder of its scripts, name) of the definition the options or RUN name."""
    from bayesvae.models.build import ModelSpec
    from bayesvae.run import build_run_pair, load_run

    if args.run_dir:
        run = load_run(args.run_dir, trust_code=args.trust_code, device="cpu")
        return run.config.model, run.pair, run.config.image_shape, Path(args.run_dir), str(args.run_dir)
    spec = ModelSpec(**given(args, SHOWN_OPTIONS))
    image_shape = (1, 8, 8) if spec.net == "mlp" else (1, 28, 28)
    return spec, build_run_pair(spec, image_shape, 0, None, "cpu"), image_shape, None, ""


def print_diff(args: argparse.Namespace, spec, pair, image_shape, base_dir, name) -> None:
    from bayesvae.models.build import ModelSpec
    from bayesvae.run import build_run_pair, load_run

    against = parse_against(args.against)
    if isinstance(against, Path):
        other = load_run(against, trust_code=args.trust_code, device="cpu")
        other_spec, other_pair, names = other.config.model, other.pair, (name or "options", str(against))
    else:
        other_spec = ModelSpec.from_dict({**spec.to_dict(), **scripts_from_here(against)})
        other_pair = build_run_pair(other_spec, image_shape, 0, base_dir, "cpu")
        names = (_label(spec, other_spec), _label(other_spec, spec))
    colour = sys.stdout.isatty()
    print(f"- {names[0]}\n+ {names[1]}")
    for role, title in ROLES:
        left, right = source_of(pair.definitions[role]), source_of(other_pair.definitions[role])
        labels = (f"{role}: {names[0]}", f"{role}: {names[1]}")
        changes = sum(line[:1] in "+-" for line in diff_lines(left, right, labels)[2:])
        print(f"\n{title}: " + (f"{changes} lines change" if changes else "identical"))
        for line in diff_lines(left, right, labels, colour):
            print(line)


def discrete_role(pair, image_shape) -> str | None:
    """The line naming the pair's enumerated discrete site and its Bayes roles (None without one)."""
    from bayesvae.inference.enumerated_terms import discrete_site_of

    site = discrete_site_of(pair, torch.full((2, *image_shape), 0.5).bernoulli())
    if site is None:
        return None
    from bayesvae.models.protocol import trace_pair

    guide_trace, _ = trace_pair(pair, torch.zeros(2, *image_shape))
    in_guide = site in guide_trace.nodes
    return (f"enumerated discrete site {site!r}: prior p({site}) in the model"
            + (f", approximate posterior q({site}|x) in the guide (z then depends on it: q(z|x,{site}))" if in_guide
               else " (summed out in the model; the guide has only q(z|x))")
            + f"; the ELBO and log p(x) sum its values exactly (TraceEnum_ELBO), it is never sampled")


def run(args: argparse.Namespace) -> int:
    spec, pair, image_shape, base_dir, name = _definition(args)
    note = discrete_role(pair, image_shape)
    if note:
        print(note + "\n")
    if args.against:
        print_diff(args, spec, pair, image_shape, base_dir, name)
    else:
        print(side_by_side(source_of(pair.definitions["model"]), source_of(pair.definitions["guide"]),
                           tuple(title for _, title in ROLES)))
    if args.render:
        for path in render(pair, image_shape, Path(args.render)):
            print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("show", help="print a model and its guide side by side, or the diff of two definitions",
                            description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", metavar="RUN", help="show the definitions of a trained run")
    from bayesvae.models.build import ModelSpec

    add_flags(parser, ModelSpec, SHOWN_OPTIONS)
    parser.add_argument("--against", metavar="KEY=VALUE,...|RUN",
                        help="print only what changes from this definition to another: settings to change "
                             "(e.g. guide=delta, prior=vamp,guide=iaf) or another run folder")
    parser.add_argument("--render", metavar="PREFIX", help="write PREFIX-model.png and PREFIX-guide.png")
    parser.add_argument("--trust-code", action="store_true", help="allow loading a run holding user scripts")
    parser.set_defaults(run=run)
