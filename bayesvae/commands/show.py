"""``bayesvae show``: the model and the guide as code, side by side, and as graphs.

The left column is the model p(z) p(x | z) (its ``forward`` plus the prior and likelihood it uses);
the right column is the guide q(z | x). ``--render`` draws both with ``pyro.render_model`` (needs the
graphviz package and its ``dot`` program).
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import shutil
import textwrap
from pathlib import Path

import torch

from bayesvae.models.errors import BadInput


def source_of(definition: object) -> str:
    """The code that defines a model or guide: a function's source, or a module's ``forward`` with the
    prior and likelihood it calls."""
    if isinstance(definition, torch.nn.Module):
        parts = [inspect.getsource(type(definition).forward)]
        for role in ("prior", "likelihood"):
            part = getattr(definition, role, None)
            if isinstance(part, torch.nn.Module):
                parts.append(f"# {role}: {type(part).__name__}\n" + inspect.getsource(type(part).forward))
        return "\n".join(textwrap.dedent(p) for p in parts)
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


def run(args: argparse.Namespace) -> int:
    from bayesvae.models.build import ModelSpec
    from bayesvae.run import load_run, build_run_pair

    if args.run_dir:
        run = load_run(args.run_dir, trust_code=args.trust_code, device="cpu")
        pair, image_shape = run.pair, run.config.image_shape
    else:
        spec = ModelSpec(**{k: v for k, v in (("model", args.model), ("guide", args.guide), ("prior", args.prior),
                                               ("likelihood", args.likelihood), ("net", args.net),
                                               ("latent_dim", args.latent_dim)) if v is not None})
        image_shape = (1, 8, 8) if spec.net == "mlp" else (1, 28, 28)
        pair = build_run_pair(spec, image_shape, 0, None, "cpu")
    print(side_by_side(source_of(pair.definitions["model"]), source_of(pair.definitions["guide"]),
                       ("model  p(z) p(x|z)", "guide  q(z|x)")))
    if args.render:
        for path in render(pair, image_shape, Path(args.render)):
            print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("show", help="print a model and its guide side by side (and draw them)",
                            description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", metavar="RUN", help="show the definitions of a trained run")
    parser.add_argument("--model", help="builtin (default) or my_vae.py:model")
    parser.add_argument("--guide", help="normal (default), delta, ... or my_vae.py:guide")
    parser.add_argument("--prior")
    parser.add_argument("--likelihood")
    parser.add_argument("--net")
    parser.add_argument("--latent-dim", type=int)
    parser.add_argument("--render", metavar="PREFIX", help="write PREFIX-model.png and PREFIX-guide.png")
    parser.add_argument("--trust-code", action="store_true", help="allow loading a run holding user scripts")
    parser.set_defaults(run=run)
