"""Loading a user's ``model``/``guide`` from a Python script: ``"my_vae.py:model"``.

Importing a script runs its code, so callers decide whether the script is trusted
(see ``bayesvae.load_run(..., trust_code=True)``); this module only loads and reports problems.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Callable

from .errors import BadInput

_counter = itertools.count()
_LOADED: set[str] = set()   # resolved paths of the scripts imported so far (user_code_error)


def is_code_ref(ref: str) -> bool:
    """True for ``"path/to/file.py:function"``, False for a built-in name such as ``"normal"`` (no colon)."""
    return ":" in ref


def split_code_ref(ref: str) -> tuple[Path, str]:
    """``"dir/my_vae.py:guide"`` → ``(Path("dir/my_vae.py"), "guide")``; ``"f.py:vae.guide"`` for a method."""
    path, _, name = ref.rpartition(":")
    if not all(part.isidentifier() for part in name.split(".")):
        raise BadInput(f"{ref!r}: expected path/to/script.py:function (or :object.method)")
    return Path(path), name


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_script(path: Path) -> ModuleType:
    """Import ``path`` as a fresh module (a new module object each call, so two runs never share weights)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"script {path} does not exist")
    if path.suffix != ".py":
        raise BadInput(f"script {path} is not a Python file (.py)")
    name = f"bayesvae_user_{path.stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"script {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling-free introspection look modules up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise BadInput(f"script {path} is not valid Python: line {error.lineno}: {error.msg}") from None
    except (Exception, SystemExit, KeyboardInterrupt) as error:  # noqa: BLE001 - user code, one line
        sys.modules.pop(name, None)
        if isinstance(error, (SystemExit, KeyboardInterrupt)):  # would end bayesvae silently (exit 0)
            what = f"called sys.exit({error.code!r})" if isinstance(error, SystemExit) else "raised KeyboardInterrupt"
            raise BadInput(f"script {path} {what} at import (line {_line(error, path)}): a model script must "
                           f"define its functions, not exit") from None
        raise BadInput(f"script {path} raised at import: {type(error).__name__}: {' '.join(str(error).split())} "
                       f"(line {_line(error, path)})") from None
    _LOADED.add(str(path.resolve()))
    return module


def _line(error: BaseException, path: Path) -> str:
    """Line of the deepest traceback frame inside the script ``path``."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    return str(frames[-1].lineno) if frames else "?"


def user_frame(error: BaseException) -> str | None:
    """``file:line (function)`` of the deepest traceback frame inside a user script loaded by
    :func:`load_script`, or None when the error did not pass through user code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if str(Path(f.filename).resolve()) in _LOADED]
    return f"{frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else None


def first_line(error: BaseException) -> str:
    """``Type: message`` in one line (Pyro appends multi-line trace-shape tables to its messages)."""
    message = " ".join(str(error).split("Trace Shapes:")[0].split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def user_code_error(error: BaseException) -> BadInput | None:
    """One line for an exception raised inside a user script loaded by :func:`load_script` (during
    training, diagnosis, comparison, …): its file and line, the exception; None when no user frame is in
    the traceback (a bayesvae bug stays a traceback)."""
    if isinstance(error, BadInput) or (where := user_frame(error)) is None:
        return None
    return BadInput(f"your code failed at {where}: {first_line(error)}")


def get_callable(module: ModuleType, name: str, path: Path) -> Callable:
    """``module.name`` (dotted names reach methods, e.g. ``vae.guide``); it must exist and be callable."""
    fn: object = module
    for part in name.split("."):
        if not hasattr(fn, part):
            raise BadInput(f"script {path} defines no {name!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise BadInput(f"{path}:{name} is not callable (it is a {type(fn).__name__})")
    return fn
