"""Package-level names imported on first use (PEP 562 module ``__getattr__``).

A package's ``__init__`` that imported all its modules made every light submodule expensive:
the config models (``gateway.guards.config``, ``gateway.limits.config``, ...) pulled in
presidio, SQLAlchemy and the rest, so ``gateway serve --workers N``'s supervisor and every
``gateway keys ...`` command loaded the whole gateway.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving the names ``modules`` lists, each from its module."""
    exports = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
