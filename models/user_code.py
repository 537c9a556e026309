"""Loading a user's ``model``/``guide`` from a Python script: ``"my_vae.py:model"``.

Importing a script runs its code, so callers decide whether the script is trusted
(see ``bayesvae.load_run(..., trust_code=True)``); this module only loads and reports problems.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

from .errors import BadInput

_counter = itertools.count()


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
    except Exception as error:  # noqa: BLE001 - any failure of user code is reported in one line
        sys.modules.pop(name, None)
        raise BadInput(f"script {path} raised at import: {type(error).__name__}: {error}") from None
    return module


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
