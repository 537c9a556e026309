"""What ``fit``'s ``model=``/``guide=`` arguments become: references for config.json, in-memory callables,
and the copies of users' scripts under RUN/code/ (with their SHA-256, checked when the run is reopened)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from bayesvae.models.build import BUILTIN_MODEL, ModelSpec
from bayesvae.models.errors import BadInput
from bayesvae.models.user_code import sha256_file, split_code_ref

from .config import CODE_DIR


def callable_ref(fn: Callable) -> str | None:
    """``"file.py:name"`` for a function (or ``obj.method``) defined at the top level of a .py file, else None."""
    target = getattr(fn, "__self__", None)
    function = getattr(fn, "__func__", fn)
    namespace = getattr(function, "__globals__", None)
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        source = None
    if namespace is None or not source or not source.endswith(".py"):
        return None
    for name, value in namespace.items():
        if target is None and value is fn:
            return f"{source}:{name}"
        if target is not None and value is target:
            return f"{source}:{name}.{function.__name__}"
    return None


def definition(value, role: str) -> tuple[str, Callable | None]:
    """(reference for config.json, in-memory callable or None) for a ``model=``/``guide=`` argument."""
    default = BUILTIN_MODEL if role == "model" else "normal"
    if value is None:
        return default, None
    if isinstance(value, (str, Path)):
        return str(value), None
    if callable(value):
        ref = callable_ref(value)
        return (ref, None) if ref else (f"<in-memory {role}>", value)
    raise BadInput(f"{role}= must be a name, 'script.py:function' or a function, got {type(value).__name__}")


def code_entries(spec: ModelSpec) -> tuple[ModelSpec, dict, dict[str, Path]]:
    """Point the spec's scripts at their RUN/code/ copies: (saved spec, config.json code entries, sources)."""
    code, sources, refs, files = {}, {}, {}, {}
    for role, ref in spec.code_refs.items():
        path, name = split_code_ref(ref)
        path = path.resolve()
        if path not in files:  # one copy per script, named after it
            file = f"{CODE_DIR}/{path.name}"
            files[path] = file if file not in files.values() else f"{CODE_DIR}/{role}_{path.name}"
        code[role] = {"file": files[path], "sha256": sha256_file(path)}
        sources[role] = path
        refs[role] = f"{files[path]}:{name}"
    return ModelSpec.from_dict({**spec.to_dict(), **refs}), code, sources
