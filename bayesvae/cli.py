"""The ``bayesvae`` command: one sub-command per module in :mod:`bayesvae.commands`.

Every input problem ends the same way: one line ``bayesvae: error: ...`` on stderr and exit code 2,
with nothing written. Ctrl-C during training saves and exits 130.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings

from bayesvae.models.errors import BadInput
from bayesvae.models.user_code import user_code_error

COMMANDS = ("train", "show", "diagnose", "sweep", "compare")


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; bayesvae's contract is one line on stderr, exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"bayesvae: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bayesvae", description=__doc__.splitlines()[0])
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
    sys.stderr.write(f"bayesvae: error: {message}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message="ArviZ is undergoing a major refactor", category=FutureWarning)
    args = None
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except KeyboardInterrupt:  # outside training (imports, data loading, diagnose, compare): nothing half-made
        sys.stderr.write("bayesvae: interrupted; nothing was half-written\n")
        return 130
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

if __name__ == "__main__":
    sys.exit(main())
