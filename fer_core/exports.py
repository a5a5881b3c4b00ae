"""The public names of a subpackage, loaded on first use.

A subpackage's `__init__` lists the names the dashboard (and any caller outside the library) may use, each with
the module that defines it; `__all__` is that list, and the architecture test allows pages/ and dashboard/ no
other door into the library. Names load lazily (PEP 562), so `from fer_core.data import load_dataset` imports the
modules it needs and not the whole package, and a package's `__init__` adds no import cycle.
"""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, names: dict[str, str]) -> tuple[list[str], Callable[[str], object]]:
    """(`__all__`, `__getattr__`) for `package` whose public `names` map to the submodule defining each."""
    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
    return sorted(names), __getattr__
