"""The ``bayesvae`` command: one sub-command per module in bayesvae/commands/.

Every input problem ends the same way: one line ``bayesvae: error: ...`` on stderr and exit code 2,
with nothing written (a mistyped option gets the nearest right one suggested). Ctrl-C during training
saves and exits 130.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import signal
import sys

from bayesvae.inference.interrupts import Terminated, terminate_by_exception
from bayesvae.models.errors import BadInput
from bayesvae.models.user_code import user_code_error

COMMANDS = ("train", "show", "diagnose", "sweep", "compare", "report")


DESCRIPTION = """Variational autoencoders as explicit Pyro programs: p(x, z) = p(z) p(x|z) fitted with a guide
q(z|x) by SVI, then measured against their Bayes terms (log p(x), the ELBO's gap KL(q || p(z|x)), MCMC on p(z|x)).
Start with: bayesvae train (a VAE on the built-in digits in seconds), then bayesvae diagnose RUN."""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; bayesvae's contract is one line on stderr, exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"bayesvae: error: {message}{self._suggestion(message)} (see {self.prog} --help)\n")
        sys.exit(2)

    def _suggestion(self, message: str) -> str:
        """``; did you mean --latent-dim?`` for an unrecognized option close to a known one (difflib; argparse's
        own ``suggest_on_error`` needs Python ≥ 3.14)."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        known = [s for parser in _parsers(self) for action in parser._actions for s in action.option_strings
                 if s.startswith("--")]
        for word in message.split(":", 1)[1].split():
            if word.startswith("--"):
                close = difflib.get_close_matches(word.split("=")[0].replace("_", "-"), known, n=1, cutoff=0.6)
                if close:
                    return f"; did you mean {close[0]}?"
        return ""


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and its sub-commands' parsers (the top-level parser reports their unknown options)."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bayesvae", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version="bayesvae 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"bayesvae.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"bayesvae.commands.{name}":
                continue  # a command not built yet
            raise
        module.add_parser(sub)
    return parser


def fail(message: str) -> int:
    from bayesvae.launch import reports_errors

    if reports_errors():   # of several data-parallel processes, rank 0 alone
        sys.stderr.write(f"bayesvae: error: {message}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    args = None
    restore_sigterm = terminate_by_exception()
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except KeyboardInterrupt:  # outside training (imports, data loading, diagnose, compare): nothing half-made
        sys.stderr.write("bayesvae: interrupted; nothing was half-written\n")
        return 130
    except Terminated:  # the same for SIGTERM (training saves and reports its own)
        sys.stderr.write("bayesvae: terminated (SIGTERM); nothing was half-written\n")
        return 128 + signal.SIGTERM
    except BadInput as error:
        return fail(" ".join(str(error).split()))
    except OSError as error:  # the file system refused: say which file and why, in one line
        where = error.filename or "a file"
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            then = "resume with --resume" if getattr(args, "command", None) == "train" else "run the command again"
            return fail(f"disk full while writing {where}: nothing was half-written; free space, then {then}")
        return fail(f"cannot access {where}: {error.strerror or error}")
    except Exception as error:  # noqa: BLE001 - an exception from the user's script: its file and line
        if (in_user_code := user_code_error(error)) is None:
            raise
        return fail(str(in_user_code))
    finally:
        restore_sigterm()


if __name__ == "__main__":
    sys.exit(main())
